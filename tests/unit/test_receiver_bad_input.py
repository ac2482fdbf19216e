"""The control room's ingest never crashes on bad input and keeps it for inspection: a topic not
ours, a non-JSON or oversized event, an image before its event (verified when the event comes),
an event with a bad signature (stored and flagged)."""

from __future__ import annotations

import json

from mosquitto import make_event

from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.ingest import MAX_EVENT_BYTES, Receiver
from edge_agent.control_room.store import open_store
from edge_agent.publish.encoder import MessageEncoder
from edge_agent.publish.topics import Topics

KEY = b"bad-input-site-key-0123456789ab"


def test_bad_messages_are_refused_kept_and_never_crash(tmp_path, storage):
    cfg = ReceiverConfig.model_validate({"store_dir": str(tmp_path / "rx"), "storage": storage})
    store = open_store(cfg)
    rx = Receiver(cfg, store, {"site1": KEY})
    base = "nightwatch/site1/cam1"
    rx.handle("other/thing", b"whatever")  # not ours: ignored
    rx.handle(f"{base}/event", b"\xff not json")
    rx.handle(f"{base}/event", b"{" + b" " * MAX_EVENT_BYTES + b"}")
    rejected = store.query("SELECT * FROM rejected ORDER BY id")
    assert [r["topic"] for r in rejected] == [f"{base}/event"] * 2
    assert "bad event document" in rejected[0]["reason"] and "too large" in rejected[1]["reason"]
    kept = [store.read(r["path"]) for r in rejected]
    assert kept[0] == b"\xff not json" and len(kept[1]) == 1 << 20

    enc = MessageEncoder(Topics("nightwatch", "site1"), 1, KEY)
    messages = enc.event(make_event(n=1, faces=1))
    event_msg, images = messages[0], messages[1:]
    for m in images:  # the images overtake their event
        rx.handle(m.topic, m.payload)
    assert {r["status"] for r in store.query("SELECT status FROM images")} == {"unverified"}
    rx.handle(event_msg.topic, event_msg.payload)
    assert {r["status"] for r in store.query("SELECT status FROM images")} == {"ok"}

    forged = enc.event(make_event(n=2, faces=0))[0]
    doc = json.loads(forged.payload)
    doc["luma"] = 1.0  # changed after signing
    rx.handle(forged.topic, json.dumps(doc).encode())
    row = store.query("SELECT * FROM events WHERE event_id = ?", (doc["event_id"],))[0]
    assert row["signature"] == "invalid" and "SIGNATURE INVALID" in row["flag"]
    assert rx.flagged >= 3
