"""Debouncing, alert JSON (hash, signature round trip) and the agent-level alerts (models, spool)."""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pytest

from edge_agent.health.agent_alerts import AgentAlerts
from edge_agent.health.alerts import AlertBook, Debouncer, snapshot_bytes
from edge_agent.publish.signing import canonical_json, sign, verify
from edge_agent.publish.spool import Message, Spool
from edge_agent.records import EnhancedEvent


def test_debouncer_needs_hold_to_start_and_clear_to_end():
    d = Debouncer(hold_s=2.0, clear_s=3.0)
    samples = [
        (0, True),
        (1, False),
        (2, True),
        (3, True),
        (4, True),
        (5, False),
        (6, True),
        (7, False),
        (9, False),
        (10, False),
    ]
    out = [(t, d.update(raw, t)) for t, raw in samples]
    assert [(t, p) for t, p in out if p] == [(4, "start"), (10, "end")]
    assert d.started_at == 2
    assert d.update(None, 11) is None and not d.active  # unknown changes nothing


def test_alert_messages_carry_times_ids_and_a_verifiable_snapshot():
    msgs = []
    book = AlertBook("cam1", emit=lambda cam, doc: msgs.append((cam, doc)), site="site1")
    img = np.random.default_rng(0).integers(0, 255, (180, 640, 3), dtype=np.uint8)
    for t in range(0, 6):
        book.update(
            "covered", True, 100.0 + t, 2.0, 1.0, details={"contrast_ratio": 0.1}, snapshot=lambda: img
        )
    for t in range(6, 9):
        book.update("covered", False, 100.0 + t, 2.0, 1.0)
    (cam, start), (_, end) = msgs
    assert cam == "cam1" and start["phase"] == "start" and end["phase"] == "end"
    assert start["type"] == "covered" and start["category"] == "tamper" and start["severity"] == "critical"
    assert start["started_at"] == 100.0 and end["ended_at"] == 106.0 and end["duration_s"] == 6.0
    assert start["started_at_iso"].endswith("Z") and start["site"] == "site1"
    assert start["id"] == end["id"] and start["alert_id"] == start["id"] + "-start"
    snap = start["snapshot"]
    data = snapshot_bytes(start)
    assert (
        snap["width"] == 320 and snap["height"] == 90 and hashlib.sha256(data).hexdigest() == snap["sha256"]
    )
    # signed exactly like events; the signature covers the snapshot too
    key = b"k" * 32
    signed = sign(start, key)
    assert verify(signed, key) == "valid"
    tampered = dict(signed, snapshot=dict(snap, data_b64=base64.b64encode(data[:-1] + b"\0").decode()))
    assert verify(tampered, key) == "invalid"
    with pytest.raises(ValueError, match="does not match its sha256"):
        snapshot_bytes(tampered)
    canonical_json(end)  # JSON-ready, no NaN


def _event(errors=(), stages=()):
    return EnhancedEvent("e1", "cam1", "site1", "new", 50.0, 50.0, errors=list(errors), stages=list(stages))


def test_model_failure_alert_per_stage_until_the_stage_works_again():
    msgs = []
    alerts = AgentAlerts(lambda cam, doc: msgs.append((cam, doc)))
    alerts.observe_event(_event(stages=["low_light"]))
    assert msgs == []
    alerts.observe_event(_event(errors=["low_light: RuntimeError: bad shape"], stages=["face_detect"]))
    alerts.observe_event(_event(errors=["low_light: RuntimeError: bad shape"]))  # still failing: no repeat
    alerts.model_unavailable("face_sr", "face_sr model missing", ts=51.0)
    assert [(c, d["type"], d["phase"], d["details"]["stage"]) for c, d in msgs] == [
        (None, "model_failed", "start", "low_light"),
        (None, "model_failed", "start", "face_sr"),
    ]
    assert msgs[0][1]["scope"] == "site" and "original" in msgs[0][1]["message"]
    assert len(alerts.active()) == 2
    alerts.observe_event(_event(stages=["low_light", "face_detect"]))
    assert [(d["type"], d["phase"], d["details"]["stage"]) for _, d in msgs[2:]] == [
        ("model_failed", "end", "low_light")
    ]


def test_spool_nearly_full_and_dropping_from_a_real_spool(tmp_path):
    msgs = []
    alerts = AgentAlerts(lambda cam, doc: msgs.append(doc), hold_s=1.0, clear_s=5.0)
    spool = Spool(tmp_path / "spool", max_bytes=10_000, fsync=False)

    t = 0.0
    for _ in range(30):  # ~1 kB per record: fills, then drops the oldest
        spool.append([Message("t/x", b"x" * 900, 1)])
        alerts.check_spool_status(spool.status(), t)
        t += 0.5
    assert spool.dropped > 0
    assert [(d["type"], d["phase"]) for d in msgs] == [
        ("spool_nearly_full", "start"),
        ("spool_dropping", "start"),
    ]
    while spool.peek() is not None:  # the broker is back: the spool drains
        spool.remove(spool.peek().seq)
    for _ in range(14):
        alerts.check_spool_status(spool.status(), t)
        t += 0.5
    assert [(d["type"], d["phase"]) for d in msgs[2:]] == [
        ("spool_nearly_full", "end"),
        ("spool_dropping", "end"),
    ]
    alerts.check_spool_status(None, t)  # a publisher without a spool (the folder sink) is skipped
