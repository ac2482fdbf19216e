"""A real Mosquitto broker for tests: 127.0.0.1, a free port, a generated config.

    broker = Mosquitto(tmp_path, users={"agent": "s3cret"}, tls=True)
    broker.start(); ...; broker.stop(); broker.start()   # same port again
    broker.ca_file                                      # the CA that signed the broker certificate

Optional password file (mosquitto_passwd -b), optional TLS with a CA and a server certificate made
with the `openssl` command at test time, persistence on (so persistent sessions survive a restart).
Tests that need it skip when mosquitto is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.ports import free_port  # noqa: F401 (re-exported for the tests)
from fixtures.processes import terminate

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None
)


def require_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")




def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA (EC P-256). Returns (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name, cwd=directory)
    _openssl(
        "req", "-x509", "-new", "-key", key.name, "-out", crt.name, "-days", "2", "-subj", f"/CN=Test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=directory,
    )  # fmt: skip
    return crt, key


def make_cert(directory: Path, name: str, ca: tuple[Path, Path], server: bool = True) -> tuple[Path, Path]:
    """A leaf certificate for 127.0.0.1/localhost signed by ca. Returns (cert, key)."""
    key, csr, crt = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={'serverAuth' if server else 'clientAuth'}\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name, cwd=directory)
    _openssl("req", "-new", "-key", key.name, "-out", csr.name, "-subj", f"/CN={name}", cwd=directory)
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", crt.name, "-days", "2", "-extfile", ext.name,
        cwd=directory,
    )  # fmt: skip
    return crt, key


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        tls: bool = False,
        port: int | None = None,
        acl: str | None = None,
    ):
        require_mosquitto()
        self.dir = Path(workdir) / f"mosquitto-{os.getpid()}-{id(self) % 100000}"
        self.dir.mkdir(parents=True)
        self.port = port or free_port()
        self.users = users or {}
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self.log_file = self.dir / "mosquitto.log"
        self.ca_file: Path | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # else mosquitto drops to user 'mosquitto'
            lines.append("user root")
        if self.users:
            pw = self.dir / "passwd"
            pw.touch(mode=0o600)
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(pw), user, password], check=True, capture_output=True
                )
            lines.append(f"password_file {pw}")
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        if tls:
            ca = make_ca(self.dir / "pki")
            crt, key = make_cert(self.dir / "pki", "server", ca)
            self.ca_file = ca[0]
            self.ca = ca
            lines += [f"cafile {ca[0]}", f"certfile {crt}", f"keyfile {key}", "tls_version tlsv1.2"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"mosquitto did not listen on port {self.port} within {timeout} s\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM (the broker saves its persistent sessions), then wait; SIGKILL if it hangs."""
        if self.proc is None:
            return
        terminate(self.proc)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- who listens on a port (Linux /proc)

_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def listening_sockets(port: int) -> set[str]:
    """Inodes of the TCP sockets in LISTEN on `port` (any address, IPv4 or IPv6) in this network
    namespace, read from /proc/net/tcp and /proc/net/tcp6. Empty when nothing listens there."""
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("needs Linux /proc/net/tcp to see who listens on a port")
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... uid timeout inode
            if fields[3] == _TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process `pid` holds open (from /proc/<pid>/fd)."""
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:[") : -1])
    return out


def assert_listens_only(broker: Mosquitto) -> None:
    """The broker process, and nothing else, listens on its port."""
    listening = listening_sockets(broker.port)
    assert broker.pid is not None, "the broker process is not running"
    assert listening, f"nothing listens on port {broker.port}"
    assert listening <= socket_inodes(broker.pid), f"port {broker.port} is held by another process than the broker"


def assert_nothing_listens(port: int) -> None:
    assert not listening_sockets(port), f"something still listens on port {port} during the outage"


# --------------------------------------------------------------------------- small helpers for MQTT tests


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until it returns something truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Sniffer:
    """A plain paho subscriber that records (topic, payload, retain) of everything it sees."""

    def __init__(self, port: int, topic: str = "#", **tls_and_login):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = False
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sniffer-{id(self)}")
        if tls_and_login.get("username"):
            self.client.username_pw_set(tls_and_login["username"], tls_and_login.get("password"))
        if tls_and_login.get("ca_file"):
            self.client.tls_set(ca_certs=str(tls_and_login["ca_file"]))
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, bool(m.retain)))
        self.client.on_subscribe = lambda *_a: setattr(self, "_subscribed", True)
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(lambda: self._subscribed, 10, what="sniffer subscription")

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _r in list(self.messages) if t == topic]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_event(
    camera: str = "cam1",
    phase: str = "new",
    event_id: str | None = None,
    n: int = 0,
    faces: int = 2,
    enhanced: bool = True,
    size: tuple[int, int] = (48, 64),
):
    """A real EnhancedEvent with small random images (distinct per n)."""
    import numpy as np

    from edge_agent.records import EnhancedEvent, FaceResult, ModelInfo, new_event_id

    rng = np.random.default_rng(n)
    h, w = size
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    ts = time.time()
    return EnhancedEvent(
        event_id=event_id or new_event_id(camera, ts),
        camera=camera,
        site="site1",
        phase=phase,
        ts=ts,
        started_at=ts,
        frame_seq=n,
        original=img,
        enhanced=(img * 3).clip(0, 255).astype(np.uint8) if enhanced else None,
        faces=[
            FaceResult(
                box=(4 * i, 4, 16, 16),
                score=0.9,
                crop=img[4:20, 4 * i : 4 * i + 16].copy(),
                sr=rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                fused=3 if enhanced and i == 0 else 1,  # the first crop averages 3 frames (face fusion)
            )
            for i in range(faces)
        ],
        stages=["low_light", "face_detect", "face_sr"] if enhanced else [],
        stage_ms={"low_light": 12.5, "face_sr": 3.25},
        luma=21.5,
        motion_boxes=[(0.1, 0.2, 0.3, 0.4)],
        models=[ModelInfo("lowlight", "1.0.0", "onnxruntime", "int8")],
    )


def start_receiver(store_dir: Path, port: int, keys: dict[str, bytes] | None = None, **mqtt):
    """A control-room Receiver (persistent session) running in a thread, connected."""
    from edge_agent.control_room.config import ReceiverConfig
    from edge_agent.control_room.ingest import Receiver
    from edge_agent.control_room.store import ReceiverStore

    cfg = ReceiverConfig.model_validate(
        {
            "mqtt": {"port": port, "client_id": "recv-test", "reconnect_max_s": 1, **mqtt},
            "store_dir": str(store_dir),
        }
    )
    rx = Receiver(cfg, ReceiverStore(cfg.store_dir), keys or {}).start()
    wait_for(rx.connected.is_set, 15, what="receiver connected")
    return rx
