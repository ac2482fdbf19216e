"""The connection to the MQTT broker, shared by the box's publisher and the control room's receiver:
credentials, TLS, the paho client, connect-and-wait for the login's answer, reconnect backoff and
errors explained in words an installer can act on (which host, what failed, what to check).

paho-mqtt 2.x, callback API version 2; MQTT 3.1.1 for the box, MQTT 5 for the receiver (shared
subscriptions, session expiry, acknowledged only after the store committed). Secrets (the
password) are never logged.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config.schema import MqttConnectionConfig

_paho_log = logging.getLogger("edge_agent.broker.paho")


class MqttSetupError(Exception):
    """A local problem that prevents connecting (unreadable password or CA file, ...)."""


def resolve_password(cfg: MqttConnectionConfig) -> str | None:
    """The password from the config, its env var or its file. Errors name the source, not the secret."""
    if cfg.password is not None:
        return cfg.password.get_secret_value()
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if value is None:
            raise MqttSetupError(f"password env var {cfg.password_env} is not set")
        return value
    if cfg.password_file:
        try:
            return cfg.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise MqttSetupError(f"cannot read password_file {cfg.password_file}: {exc}") from exc
    return None


def tls_context(cfg: MqttConnectionConfig) -> ssl.SSLContext | None:
    tls = cfg.tls
    if tls is None:
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise MqttSetupError(f"TLS setup failed (ca_file={tls.ca_file}, cert_file={tls.cert_file}): {exc}") from exc
    if tls.insecure:
        ctx.check_hostname = False
    return ctx


_SOCKET_ERRORS = {"failed to receive on socket: ": "", "timeout on socket: ": "read timed out: "}


class PahoLog:
    """paho's on_log: its messages go to the edge_agent.publish.paho logger, and the last socket
    error is kept. paho tells a reset or a read timeout only to its log (on_disconnect then says
    'Unspecified error'); the agent reports it itself, once, with host and port, so here it is DEBUG."""

    def __init__(self) -> None:
        self.socket_error: str | None = None

    def __call__(self, _client, _userdata, level, buf: str) -> None:
        for prefix, label in _SOCKET_ERRORS.items():
            if buf.startswith(prefix):
                self.socket_error = label + re.sub(r"^\[Errno \d+\]\s*", "", buf[len(prefix) :])
                _paho_log.debug("%s", buf)
                return
        _paho_log.log(paho.LOGGING_LEVEL.get(level, logging.DEBUG), "%s", buf)

    def take(self) -> str | None:
        error, self.socket_error = self.socket_error, None
        return error


def lost_reason(client: paho.Client, reason_code: Any) -> str:
    """Why a connection ended: the socket error paho saw (e.g. 'Connection reset by peer'), else the
    reason code; paho's catch-all 'Unspecified error' for a connection the other side simply closed
    (an MQTT 3.1.1 broker sends no reason) is said as such."""
    paho_log = client.on_log
    error = paho_log.take() if isinstance(paho_log, PahoLog) else None
    if error:
        return error
    if reason_code == "Unspecified error":
        return "closed by the other side"
    return str(reason_code)


def build_client(
    cfg: MqttConnectionConfig, client_id: str, will: tuple[str, str] | None = None, clean_session: bool = True,
    v5: bool = False, manual_ack: bool = False,
) -> paho.Client:
    """A fresh paho client with TLS, login and last will set. MQTT 3.1.1, or with v5 MQTT 5 (the
    session is then chosen at connect: connect_and_wait's clean_start / session_expiry_s).
    manual_ack: messages are acknowledged by client.ack(mid, qos), not on arrival."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else clean_session, manual_ack=manual_ack,
    )
    client.on_log = PahoLog()
    if cfg.username:
        client.username_pw_set(cfg.username, resolve_password(cfg))
    ctx = tls_context(cfg)
    if ctx is not None:
        client.tls_set_context(ctx)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def explain_connect_error(cfg: MqttConnectionConfig, exc: BaseException) -> tuple[int, str]:
    """(log level, message) for an exception raised while connecting."""
    where = f"MQTT broker {cfg.host}:{cfg.port}"
    if isinstance(exc, MqttSetupError):
        return logging.ERROR, f"{where}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        ca = cfg.tls.ca_file if cfg.tls else None
        return logging.ERROR, (
            f"{where}: TLS certificate not trusted ({exc.verify_message or exc.reason}); "
            f"check tls.ca_file ({ca}) and the host name"
        )
    if isinstance(exc, ssl.SSLError):
        return logging.ERROR, f"{where}: TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return logging.WARNING, f"{where} refused the connection (broker down?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return logging.WARNING, f"{where}: connection timed out"
    if isinstance(exc, socket.gaierror):
        return logging.ERROR, f"{where}: cannot resolve host name: {exc}"
    if isinstance(exc, OSError):
        return logging.WARNING, f"{where}: connection failed: {exc.strerror or exc}"
    return logging.ERROR, f"{where}: connection failed: {type(exc).__name__}: {exc}"


def connect_and_wait(client: paho.Client, cfg: MqttConnectionConfig, timeout: float,
                     session_expiry_s: int | None = None) -> str | None:
    """Connect and wait for the CONNACK. None on success, else a human-readable reason.
    session_expiry_s (MQTT 5 clients only): resume the session and keep it this long on the broker
    while the client is away (None: a clean session that ends with the connection).

    Raises the socket/TLS exception of a failed TCP or TLS connect (see explain_connect_error).
    """
    result: dict[str, Any] = {}

    def on_connect(_c, _u, flags, reason_code, _props) -> None:
        result["rc"] = reason_code
        result["session_present"] = flags.session_present

    def on_disconnect(_c, _u, _flags, reason_code, _props) -> None:
        result.setdefault("lost", reason_code)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    if isinstance(client.on_log, PahoLog):
        client.on_log.take()  # an error of an earlier connection is not this one's
    if client.protocol == paho.MQTTv5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        if session_expiry_s:
            props.SessionExpiryInterval = int(session_expiry_s)
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=not session_expiry_s,
                       properties=props)
    else:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    deadline = time.monotonic() + timeout
    while "rc" not in result and "lost" not in result and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    where = f"MQTT broker {cfg.host}:{cfg.port}"
    rc = result.get("rc")
    if rc is None and "lost" in result:  # no CONNACK at all: not a refusal, say what happened
        hint = "the broker's log says why" if cfg.tls else "if this port expects TLS, configure the tls section"
        why = lost_reason(client, result["lost"])
        return f"{where}: the connection ended before the broker answered the login ({why}); {hint}"
    if rc is None:
        client.disconnect()
        return f"no CONNACK from {cfg.host}:{cfg.port} within {timeout:.0f} s"
    if rc.is_failure:
        client.disconnect()
        who = f" for user {cfg.username!r}" if cfg.username else ""
        hint = " (check username and password)" if int(rc.value) in (4, 5, 134, 135) else ""
        return f"{where} refused the login{who}: {rc}{hint}"
    return None


class Backoff:
    """Reconnect delays: min_s after a failure, doubling up to max_s; reset() after a success."""

    def __init__(self, min_s: float, max_s: float):
        self.min_s, self.max_s = min_s, max_s
        self._delay = min_s
        self.next_try = 0.0  # monotonic time of the next attempt

    def ready(self) -> bool:
        return time.monotonic() >= self.next_try

    def failed(self) -> float:
        """Schedule the next attempt; returns the delay chosen."""
        delay = self._delay
        self.next_try = time.monotonic() + delay
        self._delay = min(self._delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._delay = self.min_s
        self.next_try = 0.0


class ProblemLog:
    """Logs a connection problem once; the same message again at most every repeat_s (DEBUG between)."""

    def __init__(self, logger: logging.Logger, repeat_s: float = 300.0):
        self.log, self.repeat_s = logger, repeat_s
        self._last: tuple[str, float] | None = None

    def report(self, level: int, message: str, suffix: str = "") -> None:
        now = time.monotonic()
        if self._last and self._last[0] == message and now - self._last[1] < self.repeat_s:
            self.log.debug("%s (repeated)", message)
            return
        self._last = (message, now)
        self.log.log(level, "%s%s", message, suffix)

    def clear(self) -> None:
        self._last = None
