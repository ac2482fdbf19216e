"""The bounded job queue: never blocks, coalesces per camera when full, keeps per-camera order."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge_agent.pipeline.jobs import EndJob, JobQueue
from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import Frame, Job, MotionResult


def job(camera: str, seq: int, event: str = "e1", phase: str = "update") -> Job:
    frame = Frame(camera=camera, seq=seq, ts=float(seq), image=np.zeros((4, 4, 3), np.uint8))
    motion = MotionResult(active=True, started=phase == "new", ended=False, boxes=[], changed_fraction=0.1)
    return Job(event_id=event, camera=camera, frame=frame, motion=motion, phase=phase)


def test_full_queue_keeps_newest_frame_of_the_camera_and_counts_the_drop():
    stats = {"a": CameraStats("a"), "b": CameraStats("b")}
    q = JobQueue(2, stats)
    q.put(job("a", 1, phase="new"))
    q.put(job("b", 1, event="f1"))
    q.put(job("a", 2))  # full: replaces a's older frame, keeping the event's 'new' phase
    assert stats["a"].get("jobs_dropped") == 1
    first = q.get(timeout=0)
    assert (first.camera, first.frame.seq, first.phase) == ("a", 2, "new")
    q.done(first)
    second = q.get(timeout=0)
    assert (second.camera, second.frame.seq) == ("b", 1)
    q.done(second)
    assert q.get(timeout=0) is None


def test_full_queue_drops_the_oldest_frame_of_another_camera():
    stats = {"a": CameraStats("a"), "b": CameraStats("b")}
    q = JobQueue(1, stats)
    q.put(job("a", 1))
    q.put(job("b", 5))
    assert stats["a"].get("jobs_dropped") == 1 and stats["b"].get("jobs_dropped") == 0
    got = q.get(timeout=0)
    assert (got.camera, got.frame.seq) == ("b", 5)


def test_end_markers_are_never_dropped_and_do_not_use_capacity():
    stats = {"a": CameraStats("a")}
    q = JobQueue(1, stats)
    q.put(job("a", 1))
    q.put(EndJob("e1", "a", 0.0, 1.0))
    q.put(job("a", 2, event="e2", phase="new"))  # full of frames: coalesces with seq 1
    kinds = []
    while (j := q.get(timeout=0)) is not None:
        kinds.append(type(j).__name__ if isinstance(j, EndJob) else f"{j.event_id}:{j.frame.seq}")
        q.done(j)
    # the end of e1 survived and still comes before e2's frame, which replaced e1's frame
    assert kinds == ["EndJob", "e2:2"]
    assert stats["a"].get("jobs_dropped") == 1


def test_put_never_blocks_even_when_nobody_consumes():
    q = JobQueue(3)
    t = time.perf_counter()
    for i in range(2000):
        q.put(job("a", i))
    assert time.perf_counter() - t < 2.0
    assert q.frames_queued() == 3


def test_one_camera_is_handed_to_one_worker_at_a_time():
    q = JobQueue(8)
    q.put(job("a", 1))
    q.put(job("a", 2))
    q.put(job("b", 1, event="f"))
    first = q.get(timeout=0)
    assert first.camera == "a"
    other = q.get(timeout=0)  # a is busy: b's job comes next, a's second waits
    assert other.camera == "b"
    assert q.get(timeout=0.05) is None
    q.done(first)
    nxt = q.get(timeout=0)
    assert (nxt.camera, nxt.frame.seq) == ("a", 2)


def test_wait_idle_and_close_wake_waiters():
    q = JobQueue(2)
    got = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=5)))
    t.start()
    time.sleep(0.05)
    q.close()
    t.join(2)
    assert not t.is_alive() and got == [None]
    assert q.wait_idle(0.1)
