"""The per-camera gate loop on a real capture thread, slot and motion gate (no models involved)."""

from __future__ import annotations

import threading

import pytest
import yaml

from edge_agent.capture.reader import CaptureThread
from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.config.loader import parse_config
from edge_agent.demo import generate_night_clip
from edge_agent.motion.gate import MotionGate
from edge_agent.pipeline.camera import CameraLoop, LatestSnapshots
from edge_agent.pipeline.jobs import EndJob, JobQueue
from edge_agent.pipeline.stats import CameraStats
from edge_agent.publish.local import LocalDirectoryPublisher
from edge_agent.records import Job


def run_loop(tmp_path, clip, snapshots: dict, queue_size: int = 256, faces: dict | None = None):
    data = {
        "cameras": [
            {
                "name": "cam",
                "source": {"file": str(clip.path)},
                "motion": {"threshold": 12, "off_delay_s": 0.5},
                "snapshots": snapshots,
                **({"faces": faces} if faces else {}),
            }
        ]
    }
    cam = parse_config(yaml.safe_dump(data)).cameras[0]
    stats = CameraStats("cam")
    slot = LatestFrameSlot(stats)
    stop = threading.Event()
    capture = CaptureThread(cam, slot, stats, stop)
    jobs = JobQueue(queue_size, {"cam": stats})
    pub = LocalDirectoryPublisher(tmp_path / "out")
    shots = LatestSnapshots(["cam"])
    loop = CameraLoop("cam", lambda: cam, capture, slot, MotionGate(cam.motion), jobs, pub, stats, shots, stop)
    loop.start()
    capture.start()
    loop.join(30)
    assert not loop.is_alive() and loop.finished
    run_loop.last = loop
    items = []
    while (j := jobs.get(timeout=0)) is not None:
        items.append(j)
        jobs.done(j)
    return items, stats, shots, tmp_path / "out"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return generate_night_clip(tmp_path_factory.mktemp("clip") / "c.avi", 640, 360, 10.0, 5.0, person=(1.0, 3.5))


def test_motion_becomes_new_updates_and_end_at_the_configured_interval(tmp_path, clip):
    items, stats, shots, out = run_loop(tmp_path, clip, {"interval_s": 0.5})
    frames = [j for j in items if isinstance(j, Job)]
    ends = [j for j in items if isinstance(j, EndJob)]
    assert frames[0].phase == "new" and all(j.phase == "update" for j in frames[1:])
    assert len(ends) == stats.get("motion_events") >= 1
    assert isinstance(items[-1], EndJob) and items[-1].event_id == frames[0].event_id
    first, last = clip.person_frames
    assert all(first <= j.frame.seq <= last + 7 for j in frames)
    gaps = [b.frame.ts - a.frame.ts for a, b in zip(frames, frames[1:], strict=False) if a.event_id == b.event_id]
    assert gaps and min(gaps) >= 0.5 - 1e-6  # interval_s between updates
    assert len(frames) >= 3
    assert shots["cam"]["original"][:2] == b"\xff\xd8"  # a JPEG of the latest frame
    motion = (out / "motion.jsonl").read_text().splitlines()
    assert len(motion) == 2 * len(ends)


def test_jobs_carry_the_moving_parts_of_the_frames_before_them(tmp_path, clip):
    items, _, _, _ = run_loop(tmp_path, clip, {"interval_s": 0.3})
    frames = [j for j in items if isinstance(j, Job)]
    updates = [j for j in frames if j.phase == "update"]
    # faces.fuse_frames 3: the regions of at most two earlier frames, at most max_regions (4) each
    assert updates and all(len({r.ts for r in j.recent}) <= 2 and len(j.recent) <= 8 for j in frames)
    assert sum(len({r.ts for r in j.recent}) == 2 for j in updates) >= len(updates) // 2  # the person walks
    for j in frames:
        assert all(r.ts < j.frame.ts for r in j.recent)
        assert [r.ts for r in j.recent] == sorted(r.ts for r in j.recent)
        h, w = j.frame.image.shape[:2]
        for r in j.recent:  # a part of the frame, not all of it, and inside it
            assert r.x >= 0 and r.y >= 0 and r.x + r.image.shape[1] <= w and r.y + r.image.shape[0] <= h
            assert r.image.size < j.frame.image.size
    # the person left 1.5 s before the clip ended: nothing of them is still held
    assert not run_loop.last._recent_regions
    off, _, _, _ = run_loop(tmp_path / "off", clip, {"interval_s": 0.3}, faces={"fuse_frames": 1})
    assert [j for j in off if isinstance(j, Job)] and all(not j.recent for j in off if isinstance(j, Job))


def test_updates_are_limited_per_minute(tmp_path, clip):
    items, stats, _, _ = run_loop(tmp_path, clip, {"interval_s": 0.0, "max_events_per_minute": 3})
    frames = [j for j in items if isinstance(j, Job)]
    # 'new' always goes out; updates stop at the limit and the rest are counted
    assert len(frames) <= 3 + stats.get("motion_events") - 1
    assert stats.get("snapshots_limited") >= 5


def test_every_job_shows_something_that_moves(tmp_path, clip):
    # the gate holds an event open through the off delay after the person left: those still frames
    # are no update (with no moving region the worker would search the whole frame for faces)
    items, stats, _, _ = run_loop(tmp_path, clip, {"interval_s": 0.0, "max_events_per_minute": 3600})
    frames = [j for j in items if isinstance(j, Job)]
    assert len(frames) >= 10
    assert all(j.motion.boxes for j in frames)
    _, last = clip.person_frames
    assert max(j.frame.seq for j in frames) <= last + 2  # nothing from the still tail of the event
