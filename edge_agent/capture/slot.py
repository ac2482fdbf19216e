"""The latest-frame slot: one frame per camera, the newest wins.

The capture thread put()s every frame it reads and never waits. The consumer get()s the newest
frame. A frame that is overwritten before anyone read it counts one 'frames_dropped'.
"""

from __future__ import annotations

import threading

from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import Frame


class LatestFrameSlot:
    def __init__(self, stats: CameraStats):
        self._stats = stats
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False

    def put(self, frame: Frame) -> None:
        """Store frame, replacing an unread one (counted as dropped). Never blocks on the consumer."""
        with self._cond:
            if self._closed:
                return
            dropped = self._frame is not None
            self._frame = frame
            self._cond.notify()
        if dropped:
            self._stats.inc("frames_dropped")

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest unread frame; waits up to timeout seconds. None on timeout or when closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            if self._closed:
                return None
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """Wake every waiter; later get() calls return None and put() is ignored."""
        with self._cond:
            self._closed = True
            self._frame = None
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
