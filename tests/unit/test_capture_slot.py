"""LatestFrameSlot: newest frame wins, overwrites are counted, put never blocks."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import Frame


def _frame(seq: int) -> Frame:
    return Frame(camera="cam", seq=seq, ts=time.time(), image=np.zeros((4, 4, 3), np.uint8))


def test_overwritten_frames_are_counted_and_newest_wins():
    stats = CameraStats("cam")
    slot = LatestFrameSlot(stats)
    for i in range(1, 6):
        slot.put(_frame(i))
    assert stats.get("frames_dropped") == 4
    got = slot.get(timeout=0.1)
    assert got is not None and got.seq == 5
    assert slot.get(timeout=0.01) is None  # read frames are not returned twice
    slot.put(_frame(6))  # the slot was empty: no drop
    assert stats.get("frames_dropped") == 4


def test_put_never_blocks_while_a_consumer_is_slow():
    stats = CameraStats("cam")
    slot = LatestFrameSlot(stats)
    t0 = time.monotonic()
    for i in range(10_000):
        slot.put(_frame(i))
    assert time.monotonic() - t0 < 2.0
    assert stats.get("frames_dropped") == 9_999


def test_get_waits_for_a_frame_and_close_wakes_waiters():
    slot = LatestFrameSlot(CameraStats("cam"))
    threading.Timer(0.05, slot.put, args=(_frame(7),)).start()
    got = slot.get(timeout=2.0)
    assert got is not None and got.seq == 7

    results = []
    waiter = threading.Thread(target=lambda: results.append(slot.get(timeout=10.0)))
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(timeout=2.0)
    assert not waiter.is_alive() and results == [None]
    slot.put(_frame(8))
    assert slot.get(timeout=0.01) is None
