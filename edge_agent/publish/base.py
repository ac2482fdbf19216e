"""The Publisher interface: where events, motion state, stats and alerts go.

The embedded default is the local directory sink (publish/local.py); MQTT (publish/mqtt.py)
implements the same protocol. The pipeline only ever sees this interface.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from edge_agent.records import EnhancedEvent, SpoolStatus


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

    def publish_settings(self, camera: str, values: dict[str, Any]) -> None:
        """The current values of a camera's command settings (config/commands.py), after start and
        after every change; a sink without state topics may ignore them."""

    def spool_status(self) -> SpoolStatus | None:
        """The offline spool, for the health checks; None for a sink without one."""

    def close(self) -> None:
        """Flush and close; after this nothing is published."""
