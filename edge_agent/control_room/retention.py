"""Retention: events older than `retention_days` (by their start) are deleted, rows and files,
except the events an operator put on hold; images whose event never arrived are deleted after
`orphan_image_hours`. Everything deleted is logged."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


def purge(store, days: float, now: float | None = None) -> list[tuple[str, str]]:
    """Delete the events that started more than `days` ago and are not on hold; returns (site, event_id)."""
    cutoff = (time.time() if now is None else now) - days * 86400
    old = store.query(
        "SELECT * FROM (SELECT e.site, e.camera, e.event_id, MIN(COALESCE(e.started_at, e.ts, e.received_at)) AS started"
        " FROM events e LEFT JOIN holds h ON h.site = e.site AND h.event_id = e.event_id"
        " WHERE h.event_id IS NULL GROUP BY e.site, e.camera, e.event_id) AS g WHERE g.started < ?", (cutoff,))
    deleted = []
    for ev in old:
        store.execute("DELETE FROM images WHERE site = ? AND event_id = ?", (ev["site"], ev["event_id"]))
        store.execute("DELETE FROM events WHERE site = ? AND event_id = ?", (ev["site"], ev["event_id"]))
        files = store.blobs.delete_prefix(store.event_dir(ev["site"], ev["camera"], ev["event_id"]))
        log.info("retention: deleted event %s/%s/%s (started %s, %d file(s))", ev["site"], ev["camera"],
                 ev["event_id"], time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ev["started"])), files)
        deleted.append((ev["site"], ev["event_id"]))
    if deleted:
        log.info("retention: %d event(s) older than %g day(s) deleted; events on hold kept", len(deleted), days)
    return deleted


def expire_orphans(store, hours: float, now: float | None = None) -> int:
    """Delete the images that arrived more than `hours` ago and whose event never did (still
    'unverified': nothing announced them); returns how many."""
    cutoff = (time.time() if now is None else now) - hours * 3600
    rows = store.query(
        "SELECT i.id, i.site, i.camera, i.event_id, i.seq, i.name, i.path, i.received_at FROM images i"
        " WHERE i.status = 'unverified' AND i.received_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM events e WHERE e.site = i.site AND e.event_id = i.event_id)", (cutoff,))
    for r in rows:
        if r["path"]:
            store.blobs.delete(r["path"])
        store.execute("DELETE FROM images WHERE id = ?", (r["id"],))
        log.warning("expired image %s/%s/%s #%d %s: its event never arrived (received %s)", r["site"], r["camera"],
                    r["event_id"], r["seq"], r["name"],
                    time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(r["received_at"])))
    return len(rows)


class RetentionThread:
    """purge() (when days is set) and expire_orphans() at start and then every interval_s, until stop()."""

    def __init__(self, store, days: float | None, interval_s: float = 3600.0, orphan_hours: float = 24.0):
        self.store, self.days, self.interval_s, self.orphan_hours = store, days, interval_s, orphan_hours
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> RetentionThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                if self.days is not None:
                    purge(self.store, self.days)
                expire_orphans(self.store, self.orphan_hours)
            except Exception:
                log.exception("retention run failed; trying again later")
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
