"""The Publisher interface: where events, motion state, stats and alerts go.

The embedded default is the local directory sink (publish/local.py); MQTT (publish/mqtt.py)
implements the same protocol. The pipeline only ever sees this interface.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from edge_agent.pipeline.events import EnhancedEvent


@runtime_checkable
class Publisher(Protocol):
    def start(self) -> None:
        """Connect / open; must not raise on a missing broker (spool instead)."""

    def publish_event(self, event: EnhancedEvent) -> None:
        """An event start/update/end with its images. Must not block the caller for long."""

    def publish_motion(self, camera: str, active: bool) -> None:
        """Debounced motion state of a camera."""

    def publish_stats(self, camera: str, stats: dict[str, Any]) -> None:
        """Periodic per-camera counters."""

    def publish_alert(self, camera: str | None, alert: dict[str, Any]) -> None:
        """A health alert (camera-level, or site-level when camera is None)."""

    def close(self) -> None:
        """Flush and close; after this nothing is published."""
