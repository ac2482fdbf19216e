"""Retention deletes old events (rows and files) except those on hold, and logs each one."""

from __future__ import annotations

import logging

from fixtures.control_room import fill

from edge_agent.control_room import queries
from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.retention import expire_orphans, purge
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


def test_an_image_whose_event_never_arrives_is_kept_a_while_then_expired(tmp_path, caplog, storage):
    store = open_store(ReceiverConfig.model_validate({"store_dir": str(tmp_path / "rx"), "storage": storage}))
    orphan_id = "20261203T101010000Z-door-aaaa1111"
    status, _ = store.add_image("site1", "door", orphan_id, 0, "original.jpg", b"\xff\xd8orphan")
    assert status == "unverified"
    key = store.query("SELECT path FROM images WHERE event_id = ?", (orphan_id,))[0]["path"]
    later = store.query("SELECT received_at FROM images WHERE event_id = ?", (orphan_id,))[0]["received_at"]
    # an image that waits for its event, still within the time allowed: kept
    assert expire_orphans(store, hours=24, now=later + 3600) == 0
    # another image whose event did arrive (unverified only until then) is never an orphan
    fill(tmp_path / "other", storage=storage)
    store.add_image("site1", "door", orphan_id.replace("aaaa", "bbbb"), 0, "original.jpg", b"\xff\xd8early")
    others = store.query("SELECT count(*) AS n FROM images WHERE event_id <> ?", (orphan_id,))[0]["n"]
    store.execute("UPDATE images SET received_at = ? WHERE event_id <> ?", (later, orphan_id))
    # ... and an image still waiting whose event then arrives is not one either
    store.execute("INSERT INTO events (site, camera, event_id, phase, seq, received_at, path, signature)"
                  " VALUES (?,?,?,?,?,?,?,?)", ("site1", "door", orphan_id.replace("aaaa", "bbbb"), "new", 0, later, "x",
                                                 "unsigned"))
    with caplog.at_level(logging.WARNING, logger="edge_agent.control_room.retention"):
        assert expire_orphans(store, hours=24, now=later + 25 * 3600) == 1
    assert not store.query("SELECT id FROM images WHERE event_id = ?", (orphan_id,))
    assert store.query("SELECT count(*) AS n FROM images")[0]["n"] == others
    assert _gone(store, key)
    assert "its event never arrived" in caplog.text and orphan_id in caplog.text
    assert expire_orphans(store, hours=24, now=later + 25 * 3600) == 0
