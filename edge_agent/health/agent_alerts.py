"""Site-level alerts about the agent itself (camera-level ones live in HealthMonitor).

- model_failed (one per stage, key model_failed:<stage>): a model could not be loaded, or a stage
  failed while processing an event; the worker then publishes the original image and the event
  lists the error. It ends when the stage runs again successfully.
- spool_nearly_full: the MQTT offline spool holds >= spool_warn_fraction of its size limit.
- spool_dropping: the spool had to drop its oldest records to make room (evidence was lost).
- agent_restarted: the previous run did not stop cleanly (killed, crashed, power cut); a one-shot
  alert (its start and end go out together at start) saying how many open events it closed.

The agent feeds it: observe_event(event) for every published event, model_unavailable() when a
model cannot be loaded, check_spool_status(publisher.spool_status(), ts) from its periodic supervisor.
"""

from __future__ import annotations

import time
from typing import Any

from edge_agent.health.alerts import AlertBook, Emit
from edge_agent.records import SpoolStatus

MODEL_STAGES = ("low_light", "face_sr")
# what the agent does instead when a stage's model is unavailable (default: publish originals)
FALLBACKS = {"face_detect": "the LBP cascade detects faces"}
SPOOL_WARN_FRACTION = 0.8
HOLD_S = 5.0  # spool conditions hold this long to start
CLEAR_S = 60.0  # and are clear this long to end (drops are rare and bursty)


class AgentAlerts:
    def __init__(
        self,
        emit: Emit | None,
        site: str | None = None,
        spool_warn_fraction: float = SPOOL_WARN_FRACTION,
        hold_s: float = HOLD_S,
        clear_s: float = CLEAR_S,
    ):
        if not 0.0 < spool_warn_fraction <= 1.0:
            raise ValueError("spool_warn_fraction must be in (0, 1]")
        self.book = AlertBook(None, emit, site=site)
        self.spool_warn_fraction = spool_warn_fraction
        self.hold_s = hold_s
        self.clear_s = clear_s
        self._dropped: int | None = None

    def active(self) -> list[dict[str, Any]]:
        return self.book.summaries()

    # ------------------------------------------------------------------ models
    def _model(self, stage: str, failed: bool | None, ts: float, error: str | None = None) -> None:
        fallback = FALLBACKS.get(stage, "original images published")
        self.book.update(
            "model_failed",
            failed,
            ts,
            0.0,
            0.0,
            key=f"model_failed:{stage}",
            details=lambda: {"stage": stage, "error": error, "fallback": fallback},
            message=f"{stage} model failed: {fallback}",
        )

    def model_unavailable(self, stage: str, error: str, ts: float | None = None) -> None:
        """A model could not be loaded: the stage is off until the agent restarts with a good one."""
        self._model(stage, True, time.time() if ts is None else ts, error)

    def observe_event(self, event: Any) -> None:
        """An event went out: a stage listed in event.errors failed, one in event.stages worked."""
        ts = getattr(event, "ts", None) or time.time()
        errors = list(getattr(event, "errors", []) or [])
        stages = set(getattr(event, "stages", []) or [])
        for stage in MODEL_STAGES:
            error = next((e for e in errors if e.startswith(f"{stage}:")), None)
            if error is not None:
                self._model(stage, True, ts, error)
            elif stage in stages:
                self._model(stage, False, ts)

    # ------------------------------------------------------------------ restart
    def agent_restarted(self, events_closed: int, previous: dict[str, Any] | None = None,
                        ts: float | None = None) -> None:
        """The previous run ended uncleanly: one start and, at once, its end (nothing stays open)."""
        ts = time.time() if ts is None else ts
        prev = previous or {}
        details = {"open_events_closed": int(events_closed), "previous_pid": prev.get("pid"),
                   "previous_started_at": prev.get("started_at")}
        message = f"agent restarted after an unclean stop; {int(events_closed)} open event(s) closed"
        self.book.update("agent_restarted", True, ts, 0.0, 0.0, details=details, message=message)
        self.book.update("agent_restarted", False, ts, 0.0, 0.0)

    # ------------------------------------------------------------------ spool
    def check_spool(self, total_bytes: int, max_bytes: int, dropped: int, ts: float) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        fill = total_bytes / max_bytes
        self.book.update(
            "spool_nearly_full",
            fill >= self.spool_warn_fraction,
            ts,
            self.hold_s,
            self.clear_s,
            details=lambda: {"fill": round(fill, 3), "bytes": int(total_bytes), "max_bytes": int(max_bytes)},
        )
        grew = self._dropped is not None and dropped > self._dropped
        self._dropped = dropped
        self.book.update(
            "spool_dropping",
            grew,
            ts,
            0.0,
            self.clear_s,
            details=lambda: {"dropped_total": int(dropped)},
        )

    def check_spool_status(self, spool: SpoolStatus | None, ts: float | None = None) -> None:
        """The spool state a publisher reports (Publisher.spool_status); None (no spool) is skipped."""
        if spool is None:
            return
        self.check_spool(spool.total_bytes, spool.max_bytes, spool.dropped, time.time() if ts is None else ts)
