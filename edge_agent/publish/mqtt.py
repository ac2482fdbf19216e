"""MQTT publisher (paho-mqtt 2.x) with an on-disk spool: intake, spool and delivery.

The pipeline never waits for the network: publish_* only put an item on an in-memory queue.
An encoder thread turns events and alerts into MQTT messages (encoder.py: JSON + image bytes,
hashed and optionally signed) and appends them to the spool on disk; a sender thread owns the MQTT
connection (edge_agent/broker/connection.py, shared with the control room's receiver), sends the
spool oldest-first with QoS 1 and removes a record only after the broker acknowledged every
message of it. While the broker is unreachable, refuses the login, drops the connection before
answering it or presents an untrusted certificate, the sender logs one clear error that says which
and retries with backoff; the spool keeps growing up to its size limit. Motion state, stats, the
live settings and Home Assistant discovery are state, not history (state_cache.py): only the
latest value is kept and it is (re)published on every connect. Commands go to the CommandRouter
the composition root gives (commands.py).

Topics are in topics.py and docs/mqtt.md. Secrets (password, HMAC key) are never logged.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from edge_agent.broker.connection import (
    Backoff,
    ProblemLog,
    build_client,
    connect_and_wait,
    explain_connect_error,
    lost_reason,
)
from edge_agent.config.schema import MqttConfig
from edge_agent.publish import discovery
from edge_agent.publish.commands import CommandRouter
from edge_agent.publish.encoder import MessageEncoder
from edge_agent.publish.signing import load_key
from edge_agent.publish.spool import Message, Spool
from edge_agent.publish.state_cache import StateCache
from edge_agent.publish.topics import Topics, check_segment
from edge_agent.records import EnhancedEvent, SpoolStatus

log = logging.getLogger(__name__)

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"


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
        commands: CommandRouter | None = None,
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
        self.commands = commands  # None: no command topics are subscribed
        self.close_flush_s = close_flush_s
        self.sw_version = sw_version
        self.client_id = mqtt_cfg.client_id or f"nightwatch-{site}-{socket.gethostname()}"[:64]
        # a bad key is a config error: refuse to start rather than publish unsigned evidence
        self._key = load_key(mqtt_cfg.hmac_key_env, mqtt_cfg.hmac_key_file)
        self.spool = Spool(mqtt_cfg.spool_dir, int(mqtt_cfg.spool_max_mb * 1024 * 1024))
        self._intake: queue.Queue[_Intake | None] = queue.Queue(maxsize=intake_size)
        self.encoder = MessageEncoder(self.topics, mqtt_cfg.qos, self._key, jpeg_quality)
        self.state = StateCache(
            self.topics, self.cameras, stats_retain=mqtt_cfg.stats_retain, sw_version=sw_version,
            discovery_prefix=mqtt_cfg.discovery_prefix if mqtt_cfg.home_assistant_discovery else None,
        )
        self._client: paho.Client | None = None
        self._connected = False
        self._commands_ready = False
        self._commands_mid: int | None = None
        self._closing = threading.Event()
        self._encoder_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._problems = ProblemLog(log)
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
        self.state.set("motion", camera, bool(active))

    def publish_stats(self, camera: str, stats: dict[str, Any]) -> None:
        if not self._known(camera, "stats"):
            return
        self.state.set("stats", camera, dict(stats))

    def publish_settings(self, camera: str, values: dict[str, Any]) -> None:
        """The current value of the camera's command settings (retained <camera>/state/<key>)."""
        if not self._known(camera, "settings"):
            return
        self.state.set("settings", camera, dict(values))

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

    def spool_status(self) -> SpoolStatus:
        return self.spool.status()

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

    def _messages_for(self, item: _Intake) -> list[Message]:
        if item.kind == "alert":
            return self.encoder.alert(item.camera, item.payload)
        return self.encoder.event(item.payload)

    # ------------------------------------------------------------------ sender thread
    def _report(self, level: int, message: str) -> None:
        """Log a connection problem; the same message is repeated at most every 5 minutes."""
        self._problems.report(level, message, f"; spooling ({len(self.spool)} record(s) waiting)")

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
        self._problems.clear()
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
        if self.commands is not None:
            self._commands_mid = client.subscribe(self.commands.topic_filter, qos=1)[1]
        self.state.mark_all()
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
        backoff = Backoff(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
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
                if not backoff.ready():
                    self._closing.wait(min(0.2, backoff.next_try - time.monotonic()))
                    continue
                if self._connect():
                    backoff.reset()
                else:
                    backoff.failed()
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
        messages, undo = self.state.take(self.status)
        if messages and not self._send_and_wait(messages):
            undo()  # keep them for the next connection (newer values win)

    # ------------------------------------------------------------------ incoming (sender thread)
    def _on_message(self, _client, _userdata, msg: paho.MQTTMessage) -> None:
        try:
            if msg.topic == discovery.status_topic(self.cfg.discovery_prefix):
                if msg.payload.strip().lower() == b"online":
                    log.info("Home Assistant is online; republishing discovery")
                    self.state.mark_discovery()
                return
            if self.commands is not None:
                reply = self.commands.handle(msg.topic, msg.payload, bool(msg.retain))
                if reply is not None:
                    self.state.reply(reply)
        except Exception:
            log.exception("error handling MQTT message on %s", msg.topic)
