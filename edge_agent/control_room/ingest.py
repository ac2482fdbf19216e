"""Control-room receiver: `edge-agent receive --config FILE`.

Subscribes to <prefix>/+/+/# (every site and camera), stores events, images and alerts in a dated
folder tree with a SQLite index (store.py), checks every image against the sha256 its
event announced and every signature against the site's key. Anything that does not match is
stored with a flag and logged at ERROR; replays (the agent resends after a lost PUBACK or after
an outage) are recognised and never stored twice.

MQTT 5, QoS 1, a persistent session by default (messages published while it is away are kept for
it by the broker), and each message is acknowledged only after the store committed it: a receiver
killed mid-message gets it again when it comes back. With mqtt.share_group, N receivers share
one shared subscription ($share/<group>/...): the broker hands each message to one of them, and
the store (one PostgreSQL + object store) joins an event's JSON and its images whichever
receivers they landed on.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from typing import Any

from edge_agent.broker.connection import (
    Backoff,
    ProblemLog,
    build_client,
    connect_and_wait,
    explain_connect_error,
    lost_reason,
)
from edge_agent.config.loader import ConfigError
from edge_agent.control_room.config import ReceiverConfig, load_receiver_config
from edge_agent.control_room.store import ReceiverStore, StoreError, open_store
from edge_agent.publish.signing import SigningKeyError, load_key, verify
from edge_agent.publish.topics import TopicError, all_sites_filter, check_segment, parse

log = logging.getLogger(__name__)

EVENT_PHASES = ("new", "update", "end")
MAX_EVENT_BYTES = 1 << 20


class Receiver:
    def __init__(self, cfg: ReceiverConfig, store: ReceiverStore, keys: dict[str, bytes], instance: int | None = None):
        """instance: this receiver's number among several sharing the load (its client id gets -N)."""
        self.cfg = cfg
        self.instance = instance
        self.store = store
        self.keys = keys
        self.prefix = cfg.mqtt.prefix
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flagged = 0

    # ------------------------------------------------------------------ message handling (no MQTT here)
    @property
    def client_id(self) -> str:
        base = self.cfg.mqtt.client_id or "nightwatch-receiver"
        return base if self.instance is None else f"{base}-{self.instance}"

    @property
    def topic_filter(self) -> str:
        group = self.cfg.mqtt.share_group
        return all_sites_filter(self.prefix) if group is None else f"$share/{group}/{all_sites_filter(self.prefix)}"

    def handle(self, topic: str, payload: bytes) -> bool:
        """Store one message. True when it is done with (stored, a replay, or refused and kept
        under rejected/): it may be acknowledged. False when the store failed: it must come again."""
        t = parse(self.prefix, topic)
        if t is None:
            log.debug("ignoring %s", topic)
            return True
        try:
            if t.kind == "event":
                self._on_event(topic, t.site, t.camera, payload)
            elif t.kind == "image":
                self._on_image(t.site, t.camera, t.event_id, t.seq, t.name, payload)
            elif t.kind == "alert":
                self._on_alert(topic, t.site, t.camera, payload)
            elif t.kind == "availability":
                state = payload.decode("utf-8", "replace")[:32]
                log.info("site %s is %s", t.site, state)
                self.store.add_availability(t.site, state)
        except Exception:
            log.exception("could not store the message on %s; it stays unacknowledged and comes again", topic)
            return False
        return True

    def _reject(self, topic: str, reason: str, payload: bytes = b"") -> None:
        self.flagged += 1
        log.error("REJECTED message on %s: %s", topic, reason)
        self.store.add_rejected(topic, reason, payload)

    def _signature(self, site: str, doc: dict[str, Any]) -> tuple[str, str | None]:
        """(signature status, flag or None). Status: valid, invalid, unsigned, unverified (no key)."""
        key = self.keys.get(site)
        if key is None:
            status = "unverified" if "signature" in doc else "unsigned"
            flag = "unsigned but signatures are required" if self.cfg.require_signature and status == "unsigned" else None
            if self.cfg.require_signature and status == "unverified":
                flag = f"signed, but no key is configured for site {site}"
            return status, flag
        status = verify(doc, key)
        if status == "invalid":
            return status, "SIGNATURE INVALID (altered, or signed with another key)"
        if status == "unsigned":
            return status, f"unsigned, but site {site} has a key"
        return status, None

    @staticmethod
    def _json(payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_EVENT_BYTES:
            raise ValueError(f"payload too large ({len(payload)} bytes)")
        doc = json.loads(payload.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return doc

    def _on_event(self, topic: str, site: str, camera: str, payload: bytes) -> None:
        try:
            doc = self._json(payload)
            check_segment(str(doc.get("event_id")), "event id")
            if doc.get("phase") not in EVENT_PHASES:
                raise ValueError(f"phase {doc.get('phase')!r} is not one of {EVENT_PHASES}")
            if not isinstance(doc.get("seq"), int) or doc["seq"] < 0:
                raise ValueError("seq missing or not a non-negative integer")
            if doc.get("images") is not None and not isinstance(doc["images"], dict):
                raise ValueError("images is not an object")
            for name in doc.get("images") or {}:
                check_segment(name, "image name")
        except (ValueError, UnicodeDecodeError, TopicError) as exc:
            self._reject(topic, f"bad event document: {exc}", payload)
            return
        flags: list[str] = []
        if doc.get("site") != site or doc.get("camera") != camera:
            flags.append(f"document says {doc.get('site')}/{doc.get('camera')}, topic says {site}/{camera}")
        sig, sig_flag = self._signature(site, doc)
        if sig_flag:
            flags.append(sig_flag)
        stored, flags = self.store.add_event(site, camera, doc, payload, sig, flags)
        what = f"event {site}/{camera}/{doc['event_id']} {doc['phase']} #{doc['seq']}"
        if flags:
            self.flagged += 1
            log.error("EVIDENCE CHECK FAILED for %s: %s", what, "; ".join(flags))
        if stored:
            log.info("stored %s (%d image(s) announced, signature %s)", what, len(doc.get("images") or {}), sig)
        else:
            log.debug("duplicate %s ignored", what)

    def _on_image(self, site: str, camera: str, event_id: str, seq: int, name: str, payload: bytes) -> None:
        status, flag = self.store.add_image(site, camera, event_id, seq, name, payload)
        if flag:
            self.flagged += 1
            log.error("EVIDENCE CHECK FAILED for image %s/%s/%s #%d %s: %s", site, camera, event_id, seq, name, flag)
        else:
            log.debug("image %s/%s/%s #%d %s: %s", site, camera, event_id, seq, name, status)

    def _on_alert(self, topic: str, site: str, camera: str | None, payload: bytes) -> None:
        try:
            doc = self._json(payload)
            if not doc.get("alert_id"):
                raise ValueError("alert_id missing")
        except (ValueError, UnicodeDecodeError) as exc:
            self._reject(topic, f"bad alert document: {exc}", payload)
            return
        sig, flag = self._signature(site, doc)
        if flag:
            self.flagged += 1
            log.error("EVIDENCE CHECK FAILED for alert %s on %s: %s", doc["alert_id"], topic, flag)
        if self.store.add_alert(site, camera, doc, payload, sig, flag):
            log.warning("alert from %s/%s: %s", site, camera or "-", doc.get("message") or doc.get("kind") or doc)

    # ------------------------------------------------------------------ MQTT loop
    def run(self) -> None:
        """Connect, subscribe and store until stop(); reconnects with backoff, never raises for the network."""
        mcfg = self.cfg.mqtt
        backoff, problems = Backoff(1.0, mcfg.reconnect_max_s), ProblemLog(log)
        expiry = mcfg.session_expiry_s if mcfg.persistent_session else None
        while not self._stop.is_set():
            try:
                client = build_client(mcfg, self.client_id, v5=True, manual_ack=True)
                refused = connect_and_wait(client, mcfg, timeout=10.0, session_expiry_s=expiry)
            except Exception as exc:
                level, refused = explain_connect_error(mcfg, exc)
            else:
                level = logging.ERROR
            if refused:
                problems.report(level, refused, "; retrying")
                self._stop.wait(backoff.failed())
                continue
            problems.clear()
            lost = threading.Event()
            why: list[str] = []

            def on_message(c, _u, msg, _lost=lost, _why=why) -> None:
                if _lost.is_set():
                    return  # after a failed store: nothing more is acknowledged on this connection
                if self.handle(msg.topic, msg.payload):
                    c.ack(msg.mid, msg.qos)
                    return
                _why.append("the store failed; the message stays unacknowledged")
                _lost.set()

            def on_disconnect(c, _u, _flags, reason_code, _props, _lost=lost, _why=why) -> None:
                _why.append(lost_reason(c, reason_code))
                _lost.set()

            client.on_message = on_message
            client.on_disconnect = on_disconnect
            # `connected` means ready to receive: set once the broker acknowledged the subscription
            mid = client.subscribe(self.topic_filter, qos=1)[1]
            client.on_subscribe = lambda _c, _u, m, *_a, _mid=mid: self.connected.set() if m == _mid else None
            log.info("receiver %s connected to %s:%d, subscribing to %s", self.client_id, mcfg.host, mcfg.port,
                     self.topic_filter)
            while not self._stop.is_set() and not lost.is_set():
                client.loop(timeout=0.1)
            self.connected.clear()
            failed = bool(why) and why[0].startswith("the store failed")
            if lost.is_set() and not self._stop.is_set():
                log.warning("receiver lost the connection to %s:%d (%s); reconnecting", mcfg.host, mcfg.port,
                            why[0] if why else "no reason given")
            try:
                client.disconnect()
            except Exception:
                pass
            if failed:  # the broker sends the unacknowledged message again on the next connection
                self._stop.wait(backoff.failed())
            else:
                backoff.reset()

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.run, name="receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def load_keys(cfg: ReceiverConfig) -> dict[str, bytes]:
    keys = {}
    for site, k in cfg.sites.items():
        key = load_key(k.hmac_key_env, k.hmac_key_file)
        if key is not None:
            keys[site] = key
    return keys


def load_checked(path) -> tuple[ReceiverConfig, dict[str, bytes]] | None:
    """The receiver config and its site keys; None (the reason printed) when either is refused."""
    try:
        cfg = load_receiver_config(path)
        return cfg, load_keys(cfg)
    except (ConfigError, SigningKeyError) as exc:
        print(exc, flush=True)
        return None


def run_receiver(args: argparse.Namespace) -> int:
    loaded = load_checked(args.config)
    if loaded is None:
        return 2
    cfg, keys = loaded
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"edge-agent receive: {exc}", flush=True)
        return 1
    instance = getattr(args, "instance", None)
    receiver = Receiver(cfg, store, keys, instance)

    def _stop(signum, _frame) -> None:
        log.info("signal %d: stopping the receiver", signum)
        receiver._stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    console = None
    first = instance in (None, 1)  # of several receivers, the first serves the console and runs retention
    if cfg.console.enabled and first:
        from edge_agent.control_room.console.server import start_console

        try:
            console = start_console(cfg)
        except (OSError, RuntimeError) as exc:
            print(f"edge-agent receive: cannot start the console on {cfg.console.bind}:{cfg.console.port}: {exc}",
                  flush=True)
            store.close()
            return 1
    retention = None
    if first:
        from edge_agent.control_room.retention import RetentionThread

        retention = RetentionThread(open_store(cfg), cfg.retention_days, cfg.retention_check_s,
                                    cfg.orphan_image_hours).start()
    log.info("receiver storing into %s (keys for %d site(s)%s)", cfg.store_dir, len(keys),
             f", events kept {cfg.retention_days:g} day(s) unless on hold" if cfg.retention_days else "")
    t0 = time.monotonic()
    try:
        receiver.run()
    finally:
        if retention is not None:
            retention.stop()
        if console is not None:
            console.stop()
        store.close()
    log.info("receiver stopped after %.0f s (%d flagged, %d duplicates ignored)", time.monotonic() - t0, receiver.flagged, store.duplicates)
    return 0
