"""Retention deletes old events (rows and files) except those on hold, and logs each one."""

from __future__ import annotations

import logging

from fixtures.control_room import fill

from edge_agent.control_room import queries
from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.retention import purge
from edge_agent.control_room.store import open_store


def _gone(store, key: str) -> bool:
    try:
        store.read(key)
    except OSError:
        return True
    return False


def test_old_events_go_held_and_recent_ones_stay(tmp_path, caplog, storage):
    ids = fill(tmp_path / "rx", storage=storage)  # 6 events, started 1_700_000_000 + 60 n (n = 1..6)
    store = open_store(ReceiverConfig.model_validate({"store_dir": str(tmp_path / "rx"), "storage": storage}))
    held = ids["door"][0]
    assert queries.set_hold(store, "site1", held, "olga", True)
    files = {r["event_id"]: r["path"] for r in store.query("SELECT event_id, path FROM events")}
    now = 1_700_000_000 + 60 * 4 + 30 + 86400  # a day and 30 s after event 4 started
    with caplog.at_level(logging.INFO, logger="edge_agent.control_room.retention"):
        deleted = purge(store, days=1.0, now=now)
    old = {e for cam in ids.values() for e in cam[:2]} - {held}  # events 1..4 started before the cutoff
    assert {e for _s, e in deleted} == old
    left = {r["event_id"] for r in store.query("SELECT DISTINCT event_id FROM events")}
    assert left == {held, ids["door"][2], ids["yard"][2]}
    left_images = {r["event_id"] for r in store.query("SELECT DISTINCT event_id FROM images")}
    assert not left_images & old
    assert all(_gone(store, files[e]) for e in old) and not _gone(store, files[held])
    assert sum("retention: deleted event" in r.getMessage() for r in caplog.records) == len(old)
    assert purge(store, days=1.0, now=now) == []  # nothing twice
