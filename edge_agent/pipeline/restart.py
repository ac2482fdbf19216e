"""What one run of the agent leaves in state_dir for the next: the 'running' marker and the open events.

    <state_dir>/running            written at start, removed at a clean stop
    <state_dir>/open_events.json   the events still open (pipeline/open_events.py)

At start, before any new event flows, every event the previous run left open is closed: an 'end'
with ended_at = the last time the event was seen and end_reason "agent_restarted". When the marker
was still there the previous run did not stop cleanly (killed, crashed, power cut): a site-level
agent_restarted alert says so and how many events were closed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.pipeline.open_events import FILE_NAME, OpenEvents
from edge_agent.records import EnhancedEvent

log = logging.getLogger(__name__)

MARKER_NAME = "running"
END_REASON_RESTARTED = "agent_restarted"


class StateDirError(RuntimeError):
    """state_dir cannot be created or written; the message names it."""


class RunState:
    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir)
        self.marker = self.dir / MARKER_NAME
        self.open_events = OpenEvents(self.dir / FILE_NAME)
        self._prepared = False
        self._begun = False

    def prepare(self) -> None:
        """Create state_dir if missing and check it can be written (idempotent)."""
        if self._prepared:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(f"state_dir {self.dir} cannot be created: {exc}") from exc
        if not self.dir.is_dir() or not os.access(self.dir, os.W_OK | os.X_OK):
            raise StateDirError(f"state_dir {self.dir} is not a writable directory")
        self._prepared = True

    def begin(self) -> dict[str, Any] | None:
        """Load what the previous run left and write the marker. Returns the previous run's marker
        ({} when unreadable) if it did not stop cleanly, else None."""
        self.prepare()
        if self._begun:
            raise RuntimeError("run state already begun")
        previous = None
        if self.marker.exists():
            try:
                previous = json.loads(self.marker.read_text(encoding="utf-8"))
                previous = previous if isinstance(previous, dict) else {}
            except (OSError, ValueError):
                previous = {}
        self.open_events.load()
        data = json.dumps({"pid": os.getpid(), "started_at": round(time.time(), 3)}).encode()
        tmp = self.marker.with_name(f".{MARKER_NAME}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.marker)
        except OSError as exc:
            raise StateDirError(f"cannot write {self.marker}: {exc}") from exc
        self._begun = True
        return previous

    def close_leftovers(self, publish: Callable[[EnhancedEvent], Any]) -> int:
        """Publish an 'end' (end_reason agent_restarted) for every event the previous run left open
        and remove it from the file; returns how many."""
        left = self.open_events.snapshot()
        for event_id, rec in sorted(left.items(), key=lambda kv: (kv[1]["started_at"], kv[0])):
            log.warning("event %s of camera %s was left open by the previous run; publishing its end",
                        event_id, rec["camera"])
            publish(
                EnhancedEvent(
                    event_id=event_id,
                    camera=rec["camera"],
                    site=rec["site"],
                    phase="end",
                    ts=rec["last_ts"],
                    started_at=rec["started_at"],
                    ended_at=rec["last_ts"],
                    frame_seq=rec["frame_seq"],
                    end_reason=END_REASON_RESTARTED,
                )
            )
            self.open_events.closed(event_id)
        return len(left)

    def end(self) -> None:
        """A clean stop: write what is pending and remove the marker."""
        if not self._begun:
            return
        self.open_events.flush()
        try:
            self.marker.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot remove %s (the next start will report an unclean stop): %s", self.marker, exc)
        self._begun = False
