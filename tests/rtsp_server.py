#!/usr/bin/python3
"""A real RTSP camera for tests: GStreamer's RTSP server serving live H.264 on 127.0.0.1.

    /usr/bin/python3 tests/rtsp_server.py --port N --path /cam1 [--user U --password P [--auth digest]]
                                          [--width 1920 --height 1080 --fps 10]

Runs under Debian's own Python (the `gi` bindings of python3-gi / gir1.2-gst-rtsp-server-1.0 are
not in the project's virtualenv), so it imports nothing from the project. The picture is
videotestsrc's SMPTE bars scrolling sideways (every frame differs), encoded live by x264enc.
With --user/--password every request needs those credentials (Basic, or Digest with
--auth digest); a wrong path gets 404 and wrong credentials 401, as from a real camera.

Prints one line `READY rtsp://127.0.0.1:N/path` on stdout once it listens; SIGTERM or SIGINT
closes every client and exits 0. Exit 3: the port could not be bound.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def pipeline(width: int, height: int, fps: int) -> str:
    return (
        "( videotestsrc is-live=true pattern=smpte horizontal-speed=6 "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
        "! videoconvert "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=3000 threads=2 "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def add_auth(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    user: str,
    password: str,
    method: str,
) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", user)
    if method == "digest":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(user, password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(user, "media.factory.access", True)
    permissions.add_permission_for_role(user, "media.factory.construct", True)
    factory.set_permissions(permissions)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam1")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=("basic", "digest"), default="basic")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=10)
    args = ap.parse_args(argv)
    if bool(args.user) != bool(args.password):
        ap.error("give both --user and --password, or neither")
    path = "/" + args.path.lstrip("/")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args.width, args.height, args.fps))
    factory.set_shared(True)  # one encoder for every client
    if args.user:
        add_auth(server, factory, args.user, args.password, args.auth)
    server.get_mount_points().add_factory(path, factory)

    loop = GLib.MainLoop()
    try:
        source_id = server.attach(None)  # binds the port
    except GLib.Error as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.message}", file=sys.stderr, flush=True)
        return 3
    if not source_id:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 3

    def shutdown() -> bool:
        # drop every client (closes their sockets), stop accepting, leave the main loop
        server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)
        GLib.source_remove(source_id)
        loop.quit()
        return GLib.SOURCE_REMOVE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, shutdown)
    print(f"READY rtsp://127.0.0.1:{args.port}{path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
