"""open_source on real files: looping, end of clip, pacing, clear errors."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.recording_slot import RecordingSlot

from edge_agent.capture.reader import CaptureThread
from edge_agent.capture.source import SourceError, open_source
from edge_agent.config.schema import CameraConfig, SourceConfig
from edge_agent.pipeline.stats import CameraStats


def write_clip(path: Path, n: int = 8, fps: float = 25.0, size: tuple[int, int] = (64, 48)) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((h, w, 3), 20 * i, np.uint8)  # frame i has brightness 20*i
        writer.write(img)
    writer.release()
    return path


def test_file_without_loop_ends(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n=8)
    src = open_source(SourceConfig(file=clip), pace=False)
    frames = []
    while (img := src.read()) is not None:
        frames.append(img)
    src.release()
    assert len(frames) == 8 and src.ended
    assert frames[0].shape == (48, 64, 3)
    assert abs(float(frames[-1].mean()) - 140) < 6


def test_file_with_loop_rewinds(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n=5)
    src = open_source(SourceConfig(file=clip, loop=True), pace=False)
    means = [float(src.read().mean()) for _ in range(12)]
    src.release()
    assert not src.ended
    # frame 5 is the first frame again (dark), frame 10 too
    assert means[5] < 6 and means[10] < 6 and means[4] > 70


def test_file_is_paced_to_its_own_fps_by_default(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n=6, fps=20.0)
    src = open_source(SourceConfig(file=clip))
    assert src.fps == pytest.approx(20.0)
    t0 = time.monotonic()
    for _ in range(6):
        assert src.read() is not None
    elapsed = time.monotonic() - t0
    src.release()
    assert elapsed >= 5 / 20.0 * 0.9  # 5 intervals of 50 ms

    fast = open_source(SourceConfig(file=clip, fps_limit=100.0))
    assert fast.fps == pytest.approx(100.0)
    fast.release()


def test_missing_file_and_dead_url_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(SourceConfig(file=tmp_path / "nope.mp4"))
    from fixtures.mjpeg_server import free_port

    with pytest.raises(SourceError, match="could not be opened"):
        open_source(SourceConfig(url=f"http://127.0.0.1:{free_port()}/stream.mjpg"))


def test_non_looping_file_finishes_the_thread(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n=6)
    cam = CameraConfig(name="cam", source=SourceConfig(file=clip, fps_limit=120.0))
    stats = CameraStats("cam")
    seen = []
    thread = CaptureThread(cam, RecordingSlot(stats, seen.append), stats, threading.Event())
    thread.start()
    thread.join(timeout=5.0)
    assert not thread.is_alive() and thread.finished
    assert [f.seq for f in seen] == [1, 2, 3, 4, 5, 6]
    assert all(b.ts >= a.ts for a, b in zip(seen, seen[1:], strict=False))
    assert stats.get("frames") == 6 and stats.get("reconnects") == 0
    assert stats.snapshot()["connected"] is False


def test_missing_device_is_a_clear_error_and_urls_hide_credentials():
    from edge_agent.capture.source import describe

    with pytest.raises(SourceError, match=r"device /dev/video97: could not be opened"):
        open_source(SourceConfig(device="/dev/video97"))
    name = describe(SourceConfig(url="rtsp://admin:secret@192.0.2.1:554/s1"))
    assert "secret" not in name and name == "rtsp://admin:***@192.0.2.1:554/s1"  # the user helps
    name = describe(SourceConfig(url="http://192.0.2.1/cgi/mjpg?user=admin&pwd=secret&res=1080"))
    assert name == "http://192.0.2.1/cgi/mjpg?user=admin&pwd=***&res=1080"
    assert describe(SourceConfig(url="rtsp://192.0.2.1/s1")) == "rtsp://192.0.2.1/s1"


@pytest.mark.parametrize(("configured", "expected"), [(None, 1), (3, 3)])
def test_a_file_decodes_on_one_thread_unless_configured(tmp_path, configured, expected):
    # a box decodes many cameras side by side: one decoding thread each is the cheapest in CPU and
    # memory (ffmpeg's own choice is one per core, for each camera)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("needs the ffmpeg binary (scripts/system-packages installs it)")
    clip = tmp_path / "clip.mp4"  # H.264, as cameras send it (ffmpeg threads its decoder)
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
                    "-frames:v", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
    cfg = SourceConfig(file=clip) if configured is None else SourceConfig(file=clip, decoder_threads=configured)
    src = open_source(cfg, pace=False)
    try:
        assert src._cap.getBackendName() == "FFMPEG"
        assert int(src._cap.get(cv2.CAP_PROP_N_THREADS)) == expected
        assert src.read() is not None
    finally:
        src.release()


class _SlowCapture:
    """A real capture whose every read takes 30 ms more, as decoding a 1080p frame under load does."""

    def __init__(self, cap):
        self.cap = cap

    def read(self):
        time.sleep(0.03)
        return self.cap.read()

    def __getattr__(self, name):
        return getattr(self.cap, name)


def test_the_time_a_read_takes_does_not_slow_a_paced_file(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n=12, fps=20.0)
    src = open_source(SourceConfig(file=clip, fps_limit=20.0, loop=True))
    src._cap = _SlowCapture(src._cap)
    t0 = time.monotonic()
    for _ in range(21):
        assert src.read() is not None
    elapsed = time.monotonic() - t0
    src.release()
    assert 20 / 20.0 * 0.95 <= elapsed <= 20 / 20.0 * 1.12  # 20 intervals of 50 ms (read + interval: 1.6 s)
