"""A real RTSP camera for tests: tests/rtsp_server.py (GStreamer's RTSP server) in a subprocess.

    cam = RtspCamera(tmp_path, path="/cam1", user="admin", password="s3cret")
    cam.start(); cam.url; ...; cam.stop(); cam.start()     # same port again (an outage)

The server runs under Debian's /usr/bin/python3, whose `gi` bindings the project's virtualenv does
not have. Tests that need it skip, naming the Debian packages, only when those are missing
(scripts/system-packages installs them); a server that is installed but fails is an error.
"""

from __future__ import annotations

import functools
import os
import select
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.ports import free_port
from fixtures.processes import terminate

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
)
_CHECK = """
import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtsp", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtsp, GstRtspServer
Gst.init(None)
missing = [e for e in ("videotestsrc", "videoconvert", "x264enc", "rtph264pay", "rtpbin")
           if Gst.ElementFactory.find(e) is None]
print(" ".join(missing))
"""


@functools.lru_cache(maxsize=1)
def missing_parts() -> str | None:
    """None when the RTSP server can run here, else what is missing."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"GStreamer RTSP server bindings unavailable ({last})"
    if r.stdout.strip():
        return f"GStreamer elements missing: {r.stdout.strip()}"
    return None


def require_rtsp_server() -> None:
    why = missing_parts()
    if why is not None:
        pytest.skip(f"no RTSP test camera: {why} (Debian packages: {PACKAGES}; scripts/system-packages)")


class RtspCamera:
    def __init__(
        self,
        workdir: Path,
        path: str = "/cam1",
        *,
        user: str | None = None,
        password: str | None = None,
        auth: str = "basic",
        width: int = 1920,
        height: int = 1080,
        fps: int = 10,
        port: int | None = None,
    ):
        require_rtsp_server()
        self.port = port or free_port()
        self.path = "/" + path.lstrip("/")
        self.user, self.password = user, password
        self.args = ["--port", str(self.port), "--path", self.path, "--width", str(width),
                     "--height", str(height), "--fps", str(fps), "--auth", auth]  # fmt: skip
        if user:
            self.args += ["--user", user, "--password", password or ""]
        self.log_file = Path(workdir) / f"rtsp-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None  # of the latest stop()
        self.started_at: float | None = None  # time.monotonic() of the latest READY

    def url_for(self, path: str | None = None, user: str | None = None, password: str | None = None) -> str:
        login = f"{user}:{password}@" if user else ""
        return f"rtsp://{login}127.0.0.1:{self.port}{path or self.path}"

    @property
    def url(self) -> str:
        return self.url_for(user=self.user, password=self.password)

    def start(self, timeout: float = 20.0) -> RtspCamera:
        if self.running:
            return self
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), *self.args], stdout=subprocess.PIPE, stderr=log, text=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY "):
                    self.started_at = time.monotonic()
                    return self
                if line == "" and self.proc.poll() is not None:
                    break
            elif self.proc.poll() is not None:
                break
        code = self.proc.poll()
        self.stop()
        raise RuntimeError(
            f"RTSP server on port {self.port} not ready within {timeout} s (exit {code})\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM (the server closes every client), then wait; SIGKILL if it hangs."""
        if self.proc is None:
            return
        self.returncode = terminate(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
