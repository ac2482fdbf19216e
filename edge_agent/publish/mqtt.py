"""MQTT publisher (paho-mqtt 2.x, callback API version 2) with an on-disk spool.

The pipeline never waits for the network: publish_* only put an item on an in-memory queue.
An encoder thread turns events and alerts into MQTT messages (JSON + image bytes, hashed and
optionally signed) and appends them to the spool on disk; a sender thread owns the MQTT
connection, sends the spool oldest-first with QoS 1 and removes a record only after the broker
acknowledged every message of it. While the broker is unreachable, refuses the login, drops the
connection before answering it or presents an untrusted certificate, the sender logs one clear
error that says which (with the socket error, e.g. a reset) and retries with backoff; the spool
keeps growing up to its size limit. Motion state, stats and Home Assistant discovery are state,
not history: only the latest value is kept and it is (re)published on every connect.

Topics are in topics.py and docs/mqtt.md. Secrets (password, HMAC key) are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config.schema import MqttConfig, MqttConnectionConfig
from edge_agent.pipeline.events import EnhancedEvent
from edge_agent.publish import discovery
from edge_agent.publish.commands import CommandError, parse_command
from edge_agent.publish.event_json import encode_event
from edge_agent.publish.signing import canonical_json, load_key, sign
from edge_agent.publish.spool import Message, Spool
from edge_agent.publish.topics import COMMAND_KEYS, Topics, check_segment

log = logging.getLogger(__name__)
_paho_log = logging.getLogger("edge_agent.publish.paho")

CommandHandler = Callable[[str, str, Any], "str | None"]
ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"


class MqttSetupError(Exception):
    """A local problem that prevents connecting (unreadable password or CA file, ...)."""


# --------------------------------------------------------------------------- connection helpers


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
    cfg: MqttConnectionConfig, client_id: str, will: tuple[str, str] | None = None, clean_session: bool = True
) -> paho.Client:
    """A fresh paho client (MQTT 3.1.1) with TLS, login and last will set."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311, clean_session=clean_session
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


def connect_and_wait(client: paho.Client, cfg: MqttConnectionConfig, timeout: float) -> str | None:
    """Connect and wait for the CONNACK. None on success, else a human-readable reason.

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


# --------------------------------------------------------------------------- the publisher


@dataclass
class _Intake:
    kind: str  # "event" | "alert"
    camera: str | None
    payload: Any


class MqttPublisher:
    """Publisher over MQTT; see the module docstring. Construct, start(), publish_*(), close()."""

    def __init__(
        self,
        mqtt_cfg: MqttConfig,
        site: str,
        cameras: list[str],
        on_command: CommandHandler | None = None,
        *,
        jpeg_quality: int | Callable[[str], int] = 90,
        intake_size: int = 256,
        close_flush_s: float = 5.0,
        sw_version: str = "",
    ):
        self.cfg = mqtt_cfg
        self.site = site
        self.topics = Topics(mqtt_cfg.prefix, site)
        self.cameras = [check_segment(c, "camera") for c in cameras]
        self.on_command = on_command
        self.jpeg_quality = jpeg_quality
        self.close_flush_s = close_flush_s
        self.sw_version = sw_version
        self.client_id = mqtt_cfg.client_id or f"nightwatch-{site}-{socket.gethostname()}"[:64]
        # a bad key is a config error: refuse to start rather than publish unsigned evidence
        self._key = load_key(mqtt_cfg.hmac_key_env, mqtt_cfg.hmac_key_file)
        self.spool = Spool(mqtt_cfg.spool_dir, int(mqtt_cfg.spool_max_mb * 1024 * 1024))
        self._intake: queue.Queue[_Intake | None] = queue.Queue(maxsize=intake_size)
        self._lock = threading.Lock()
        self._motion: dict[str, bool] = {}
        self._stats: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()  # "motion:<cam>", "stats:<cam>", "discovery"
        self._replies: list[Message] = []  # command results, sent as soon as possible
        self._event_seq: OrderedDict[str, int] = OrderedDict()
        self._client: paho.Client | None = None
        self._connected = False
        self._commands_ready = False
        self._commands_mid: int | None = None
        self._closing = threading.Event()
        self._encoder_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_problem: tuple[str, float] | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("sent_records", "sent_messages", "intake_dropped", "connects", "connect_failures", "encode_errors"),
            0,
        )

    # ------------------------------------------------------------------ Publisher protocol
    def start(self) -> None:
        if self._threads:
            return
        for name, target in (("mqtt-encode", self._encode_loop), ("mqtt-send", self._send_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info(
            "MQTT publisher for site %s -> %s:%d (tls=%s, user=%s, signing=%s, spool %s)",
            self.site,
            self.cfg.host,
            self.cfg.port,
            self.cfg.tls is not None,
            self.cfg.username or "-",
            self._key is not None,
            self.cfg.spool_dir,
        )

    def publish_event(self, event: EnhancedEvent) -> None:
        self._enqueue(_Intake("event", event.camera, event))

    def publish_alert(self, camera: str | None, alert: dict[str, Any]) -> None:
        self._enqueue(_Intake("alert", camera, dict(alert)))

    def _known(self, camera: str, what: str) -> bool:
        if camera in self.cameras:
            return True
        log.error("%s for unknown camera %r not published (cameras: %s)", what, camera, ", ".join(self.cameras))
        return False

    def publish_motion(self, camera: str, active: bool) -> None:
        if not self._known(camera, "motion state"):
            return
        with self._lock:
            self._motion[camera] = bool(active)
            self._dirty.add(f"motion:{camera}")

    def publish_stats(self, camera: str, stats: dict[str, Any]) -> None:
        if not self._known(camera, "stats"):
            return
        with self._lock:
            self._stats[camera] = dict(stats)
            self._dirty.add(f"stats:{camera}")

    def close(self) -> None:
        """Spool what is queued, try to flush the spool for close_flush_s, publish 'stopped', disconnect."""
        if self._closing.is_set():
            return
        self._closing.set()
        if not self._threads:
            return
        self._intake.put(None)
        for t in self._threads:
            t.join(timeout=self.close_flush_s + self.cfg.ack_timeout_s + 10)
        left = len(self.spool)
        if left:
            log.info("MQTT publisher closed; %d record(s) stay in the spool for the next start", left)

    # ------------------------------------------------------------------ status
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def commands_ready(self) -> bool:
        """The broker acknowledged the subscription to this site's /set command topics."""
        return self._connected and self._commands_ready

    def status(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "spool_records": len(self.spool),
            "spool_bytes": self.spool.total_bytes,
            "spool_dropped": self.spool.dropped,
            "spool_quarantined": self.spool.damaged,  # torn or corrupt records moved to <spool_dir>/bad/
            **self.counters,
        }

    # ------------------------------------------------------------------ intake -> spool
    def _enqueue(self, item: _Intake) -> None:
        if self._closing.is_set():
            log.warning("MQTT publisher is closed; %s for %s not published", item.kind, item.camera)
            return
        try:
            self._intake.put_nowait(item)
        except queue.Full:
            self.counters["intake_dropped"] += 1
            log.error(
                "MQTT intake queue full (disk too slow?); %s for %s dropped (%d dropped so far)",
                item.kind,
                item.camera,
                self.counters["intake_dropped"],
            )

    def _encode_loop(self) -> None:
        try:
            while True:
                item = self._intake.get()
                if item is None:
                    return
                try:
                    messages = self._messages_for(item)
                except Exception:
                    self.counters["encode_errors"] += 1
                    log.exception("could not encode %s for camera %s; skipped", item.kind, item.camera)
                    continue
                self.spool.append(messages)
        finally:
            self._encoder_done.set()

    def _signed(self, doc: dict[str, Any]) -> bytes:
        return canonical_json(sign(doc, self._key) if self._key is not None else doc)

    def _messages_for(self, item: _Intake) -> list[Message]:
        qos = self.cfg.qos
        if item.kind == "alert":
            doc = {
                "alert_id": uuid.uuid4().hex,
                "ts": round(time.time(), 3),
                "site": self.site,
                "camera": item.camera,
                **item.payload,
            }
            return [Message(self.topics.alert(item.camera), self._signed(doc), qos)]
        event: EnhancedEvent = item.payload
        quality = self.jpeg_quality(event.camera) if callable(self.jpeg_quality) else self.jpeg_quality
        doc, images = encode_event(event, jpeg_quality=quality)
        seq = self._event_seq.get(event.event_id, -1) + 1
        self._event_seq[event.event_id] = seq
        self._event_seq.move_to_end(event.event_id)
        if event.phase == "end":
            self._event_seq.pop(event.event_id, None)
        while len(self._event_seq) > 1000:
            self._event_seq.popitem(last=False)
        doc["seq"] = seq
        doc["site"] = self.site
        for name, meta in doc["images"].items():
            meta["topic"] = self.topics.image(event.camera, event.event_id, seq, name)
        out = [Message(self.topics.event(event.camera), self._signed(doc), qos)]
        out += [Message(doc["images"][n]["topic"], data, qos) for n, data in images.items()]
        return out

    # ------------------------------------------------------------------ sender thread
    def _report(self, level: int, message: str) -> None:
        """Log a connection problem; the same message is repeated at most every 5 minutes."""
        now = time.monotonic()
        if self._last_problem and self._last_problem[0] == message and now - self._last_problem[1] < 300:
            log.debug("%s (repeated)", message)
            return
        self._last_problem = (message, now)
        log.log(level, "%s; spooling (%d record(s) waiting)", message, len(self.spool))

    def _connect(self) -> bool:
        self.counters["connect_failures"] += 1
        try:
            client = build_client(self.cfg, self.client_id, will=(self.topics.availability, OFFLINE))
            refused = connect_and_wait(client, self.cfg, timeout=max(5.0, self.cfg.ack_timeout_s))
        except Exception as exc:
            self._report(*explain_connect_error(self.cfg, exc))
            return False
        if refused:
            self._report(logging.ERROR, refused)
            return False
        self.counters["connect_failures"] -= 1
        self.counters["connects"] += 1
        self._last_problem = None
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._connected = True
        self._commands_ready = False
        log.info(
            "connected to MQTT broker %s:%d as %s; %d spooled record(s) to replay",
            self.cfg.host,
            self.cfg.port,
            self.client_id,
            len(self.spool),
        )
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        self._commands_mid = client.subscribe(self.topics.command_filter, qos=1)[1]
        with self._lock:
            self._dirty |= {f"motion:{c}" for c in self._motion} | {f"stats:{c}" for c in self._stats}
            if self.cfg.home_assistant_discovery:
                self._dirty.add("discovery")
        if self.cfg.home_assistant_discovery:
            client.subscribe(discovery.status_topic(self.cfg.discovery_prefix), qos=1)
        return True

    def _on_subscribe(self, _c, _u, mid, _reason_codes, _props) -> None:
        if mid == self._commands_mid:
            self._commands_ready = True

    def _on_disconnect(self, client, _u, _flags, reason_code, _props) -> None:
        if self._connected and not self._closing.is_set():
            why = lost_reason(client, reason_code)
            log.warning("MQTT connection to %s:%d lost (%s)", self.cfg.host, self.cfg.port, why)
        self._connected = False

    def _drop_client(self) -> None:
        client, was_connected = self._client, self._connected
        self._client, self._connected = None, False
        if client is not None and was_connected:  # a lost connection is already closed by paho
            try:
                client.disconnect()
                if client.socket() is not None:  # paho may have flushed and closed it already
                    client.loop(timeout=0.05)
            except Exception:  # the socket may already be gone
                pass

    def _send_loop(self) -> None:
        while True:
            try:
                self._send_until_closed()
                return
            except Exception:  # never let the sender die: log, reconnect, go on
                log.exception("MQTT sender error; reconnecting")
                self._drop_client()
                if self._closing.wait(1.0):
                    self._drop_client()
                    return

    def _send_until_closed(self) -> None:
        delay = self.cfg.reconnect_min_s
        next_try = 0.0
        flush_deadline: float | None = None
        while True:
            if self._closing.is_set() and self._encoder_done.is_set():
                if flush_deadline is None:
                    flush_deadline = time.monotonic() + self.close_flush_s
                if not self._connected or not len(self.spool) or time.monotonic() > flush_deadline:
                    break
            if not self._connected:
                self._drop_client()
                if self._closing.is_set():
                    break
                if time.monotonic() < next_try:
                    self._closing.wait(min(0.2, next_try - time.monotonic()))
                    continue
                if self._connect():
                    delay = self.cfg.reconnect_min_s
                else:
                    next_try = time.monotonic() + delay
                    delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            assert self._client is not None
            self._client.loop(timeout=0.05)
            if not self._connected:
                continue
            self._send_state()
            record = self.spool.peek()
            if record is None:
                continue
            if self._send_and_wait(record.messages):
                self.spool.remove(record.seq)
                self.counters["sent_records"] += 1
                self.counters["sent_messages"] += len(record.messages)
            else:
                self._drop_client()
        self._finish()

    def _finish(self) -> None:
        if self._connected and self._client is not None:
            self._send_state()
            if self._send_and_wait([Message(self.topics.availability, STOPPED.encode(), 1, True)]):
                log.info("MQTT publisher stopped cleanly (availability 'stopped')")
        self._drop_client()

    def _send_and_wait(self, messages: list[Message]) -> bool:
        """Publish messages and wait for every acknowledgement; False if the connection failed."""
        client = self._client
        if client is None:
            return False
        infos = []
        for m in messages:
            info = client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                log.warning("MQTT publish to %s failed: %s", m.topic, paho.error_string(info.rc))
                return False
            infos.append(info)
        deadline = time.monotonic() + self.cfg.ack_timeout_s
        while not all(i.is_published() for i in infos):
            if not self._connected:
                return False
            if time.monotonic() > deadline:
                log.warning("no PUBACK within %.0f s; reconnecting", self.cfg.ack_timeout_s)
                return False
            client.loop(timeout=0.05)
        return True

    def _send_state(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            replies, self._replies = self._replies, []
            motion = dict(self._motion)
            stats = {k: dict(v) for k, v in self._stats.items()}
        messages = list(replies)
        for key in sorted(dirty):
            if key == "discovery":
                messages += discovery.discovery_messages(
                    self.topics, self.cameras, self.cfg.discovery_prefix, self.sw_version
                )
                continue
            kind, cam = key.split(":", 1)
            if kind == "motion":
                payload = b"ON" if motion[cam] else b"OFF"
                messages.append(Message(self.topics.motion(cam), payload, 1, True))
            elif kind == "stats":
                doc = {**stats[cam], "ts": round(time.time(), 3), "mqtt": self.status()}
                payload = json.dumps(doc, sort_keys=True, default=str).encode()
                messages.append(Message(self.topics.stats(cam), payload, 0, self.cfg.stats_retain))
        if messages and not self._send_and_wait(messages):
            with self._lock:  # keep them for the next connection (newer values win)
                self._dirty |= dirty
                self._replies = replies + self._replies

    # ------------------------------------------------------------------ incoming (sender thread)
    def _on_message(self, _client, _userdata, msg: paho.MQTTMessage) -> None:
        try:
            if msg.topic == discovery.status_topic(self.cfg.discovery_prefix):
                if msg.payload.strip().lower() == b"online":
                    log.info("Home Assistant is online; republishing discovery")
                    with self._lock:
                        self._dirty.add("discovery")
                return
            self._handle_command(msg)
        except Exception:
            log.exception("error handling MQTT message on %s", msg.topic)

    def _handle_command(self, msg: paho.MQTTMessage) -> None:
        parts = msg.topic[len(self.topics.base) + 1 :].split("/")
        if len(parts) != 3 or parts[1] != "set":
            return
        camera, key = parts[0], parts[2]
        if msg.retain:
            log.warning("ignoring retained command %s (commands must not be retained)", msg.topic)
            return
        value: Any = None
        error: str | None = None
        try:
            if camera not in self.cameras:
                raise CommandError(f"unknown camera {camera!r}")
            if key not in COMMAND_KEYS:
                raise CommandError(f"unknown setting {key!r}; known: {', '.join(COMMAND_KEYS)}")
            value = parse_command(key, msg.payload)
            if self.on_command is None:
                raise CommandError("this agent does not accept live commands")
            error = self.on_command(camera, key, value)
        except CommandError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("command %s=%r failed", msg.topic, value)
            error = f"internal error: {type(exc).__name__}"
        if error:
            log.warning("command %s refused: %s", msg.topic, error)
        else:
            log.info("command %s/%s = %r applied", camera, key, value)
        result = {"camera": camera, "key": key, "value": value, "ok": error is None, "error": error}
        result["ts"] = round(time.time(), 3)
        topic = f"{self.topics.base}/{check_segment(camera, 'camera')}/set/{check_segment(key, 'setting')}/result"
        with self._lock:
            self._replies.append(Message(topic, json.dumps(result).encode(), 1, False))
