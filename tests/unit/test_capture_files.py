"""File sources that cannot be played, and clips that simply end (capture thread and real Agent).

README: `edge-agent run` runs "until SIGINT/SIGTERM (or until every file source has ended)";
docs/running.md: exit 0 when "every camera was a non-looping file that ended". A file that cannot be
opened is never going to play, so it fails clearly (ERROR naming the camera and the file) and counts
as ended instead of being retried forever. A clip that ended is not a lost stream: no stream_lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge_agent.app import Agent
from edge_agent.capture.reader import CaptureThread
from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.config.loader import parse_config
from edge_agent.config.schema import CameraConfig, SourceConfig
from edge_agent.pipeline.stats import CameraStats
from edge_agent.pipeline.worker import Stages


def write_clip(path: Path, n: int, fps: float = 20.0, size: tuple[int, int] = (96, 64)) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(1)
    base = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)  # textured, static: no motion
    for _ in range(n):
        writer.write(base)
    writer.release()
    return path


def capture(source: SourceConfig) -> tuple[CaptureThread, CameraStats, threading.Event]:
    stats = CameraStats("yard")
    stop = threading.Event()
    thread = CaptureThread(CameraConfig(name="yard", source=source), LatestFrameSlot(stats), stats, stop)
    return thread, stats, stop


@pytest.mark.parametrize("loop", [False, True])
def test_missing_file_fails_clearly_once_and_counts_as_ended(tmp_path, caplog, loop):
    caplog.set_level(logging.DEBUG, logger="edge_agent.capture")
    missing = tmp_path / "gone.mp4"
    thread, stats, stop = capture(
        SourceConfig(file=missing, loop=loop, reconnect_initial_s=0.05, reconnect_max_s=0.1)
    )
    thread.start()
    thread.join(timeout=3.0)
    alive = thread.is_alive()
    stop.set()
    thread.join(timeout=3.0)
    assert not alive, "a file source that cannot be opened is retried instead of ending"
    assert thread.finished and thread.failed == "no such file"
    assert stats.get("frames") == 0 and stats.snapshot()["connected"] is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "camera yard" in errors[0] and str(missing) in errors[0] and "no such file" in errors[0]
    assert not [r for r in caplog.records if "retry" in r.getMessage()]  # tried once, not again


def test_file_that_is_not_a_video_fails_clearly_and_counts_as_ended(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="edge_agent.capture")
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"this is not a video\n" * 500)
    thread, stats, stop = capture(SourceConfig(file=junk, loop=True, reconnect_initial_s=0.05))
    thread.start()
    thread.join(timeout=5.0)
    alive = thread.is_alive()
    stop.set()
    thread.join(timeout=3.0)
    assert not alive and thread.finished and thread.failed
    assert stats.get("frames") == 0
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and str(junk) in errors[0] and "camera yard" in errors[0]


def agent_config(tmp_path: Path, cameras: list[dict]) -> object:
    data = {
        "site": "lab",
        "cameras": cameras,
        "models": {"dir": str(tmp_path / "no-models")},
        "publish": {"sink": "local", "local": {"dir": str(tmp_path / "out")}},
        "api": {"enabled": False},
        "state_dir": str(tmp_path / "state"),
    }
    return parse_config(yaml.safe_dump(data))


def no_faces(name: str, source: dict, **health) -> dict:
    return {"name": name, "source": source, "faces": {"enabled": False}, "health": health}


def test_agent_with_a_missing_file_and_a_clip_finishes_when_the_clip_ends(tmp_path):
    clip = write_clip(tmp_path / "short.avi", n=10)
    cfg = agent_config(
        tmp_path,
        [no_faces("clip", {"file": str(clip)}), no_faces("gone", {"file": str(tmp_path / "gone.avi")})],
    )
    agent = Agent(cfg, stages=Stages())
    agent.start()
    try:
        assert agent.wait(timeout=10.0), "edge-agent run would never end: the missing file is retried"
    finally:
        agent.stop()
    assert agent.stats["clip"].get("frames") == 10 and agent.stats["gone"].get("frames") == 0
    assert agent._cameras["gone"].capture.failed == "no such file"


def test_a_clip_that_ended_raises_no_stream_lost_alert(tmp_path):
    """Only a stream that is lost is; a clip that was played to its end is finished.

    The other camera (a looping clip) keeps the agent running past the short clip's end for
    several health ticks, with stream_lost undebounced.
    """
    fast = {"stream_lost_after_s": 0, "stream_back_after_s": 0, "frame_timeout_s": 0.5}
    short = write_clip(tmp_path / "short.avi", n=10)  # 0.5 s at 20 fps
    loop = write_clip(tmp_path / "loop.avi", n=20)
    cfg = agent_config(
        tmp_path,
        [
            no_faces("clip", {"file": str(short)}, **fast),
            no_faces("live", {"file": str(loop), "loop": True}, **fast),
        ],
    )
    agent = Agent(cfg, stages=Stages())
    agent.start()
    try:
        deadline = time.monotonic() + 10.0
        while not agent._cameras["clip"].capture.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent._cameras["clip"].capture.finished and agent._cameras["clip"].capture.failed is None
        time.sleep(3.0)  # six health ticks after the end, each well past frame_timeout_s
        assert agent.stats["live"].get("frames") > 40  # the agent kept running meanwhile
        open_alerts = [a["type"] for a in agent.stats["clip"].state.get("alerts", [])]
    finally:
        agent.stop()
    alerts_file = tmp_path / "out" / "alerts.jsonl"
    published = (
        [json.loads(line) for line in alerts_file.read_text().splitlines()] if alerts_file.exists() else []
    )
    lost = [a for a in published if a.get("camera") == "clip" and a.get("type") == "stream_lost"]
    assert "stream_lost" not in open_alerts and not lost, f"an ended clip raised stream_lost: {lost}"
