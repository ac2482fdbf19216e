"""Retention: events older than `retention_days` (by their start) are deleted, rows and files,
except the events an operator put on hold. Every deleted event is logged."""

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


class RetentionThread:
    """purge() at start and then every interval_s, until stop()."""

    def __init__(self, store, days: float, interval_s: float = 3600.0):
        self.store, self.days, self.interval_s = store, days, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> RetentionThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                purge(self.store, self.days)
            except Exception:
                log.exception("retention run failed; trying again later")
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
