"""The bounded job queue between the camera loops and the workers.

Camera loops put motion frames (Job) and motion ends (EndJob) into one JobQueue; put() never
blocks. When the queue is full the newest frame of a camera replaces that camera's oldest queued
frame (coalesce), or else the oldest queued frame is dropped; both count 'jobs_dropped'. End
markers are tiny and never dropped. Jobs of one camera are handed out one at a time, in order,
so a camera's events are published in order even with several worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import Job


@dataclass(slots=True)
class EndJob:
    """Motion ended: publish the event's 'end' phase (after its queued frames)."""

    event_id: str
    camera: str
    started_at: float
    ended_at: float
    frame_seq: int = 0  # the last frame the camera loop saw


# --------------------------------------------------------------------------- queue


class JobQueue:
    def __init__(self, maxsize: int, stats: Mapping[str, CameraStats] | None = None):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._stats = stats or {}
        self._items: list[Job | EndJob] = []
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._closed = False

    def _count_drop(self, camera: str) -> None:
        st = self._stats.get(camera)
        if st is not None:
            st.inc("jobs_dropped")

    def frames_queued(self) -> int:
        with self._cond:
            return sum(1 for j in self._items if isinstance(j, Job))

    def put(self, job: Job | EndJob) -> None:
        """Never blocks. Returns at once; a dropped or coalesced frame is counted."""
        with self._cond:
            if self._closed:
                self._count_drop(job.camera)
                return
            if isinstance(job, Job):
                frames = [i for i, j in enumerate(self._items) if isinstance(j, Job)]
                if len(frames) >= self.maxsize:
                    same = [i for i in frames if self._items[i].camera == job.camera]
                    if same:
                        i = same[0]
                        old = self._items[i]
                        if old.event_id == job.event_id:
                            if old.phase == "new":
                                job.phase = "new"  # keep the event's start (with the newer frame)
                            self._items[i] = job  # in place: stays ahead of the event's end
                        else:  # an older event's frame: drop it, queue the new one after its end
                            del self._items[i]
                            self._items.append(job)
                        self._count_drop(job.camera)
                        self._cond.notify_all()
                        return
                    old = self._items.pop(frames[0])
                    self._count_drop(old.camera)
            self._items.append(job)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Job | EndJob | None:
        """The oldest job of a camera no other worker is busy with; None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for i, job in enumerate(self._items):
                    if job.camera not in self._busy:
                        self._busy.add(job.camera)
                        return self._items.pop(i)
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def done(self, job: Job | EndJob) -> None:
        with self._cond:
            self._busy.discard(job.camera)
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._items and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Wake every waiting get(); queued jobs can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
