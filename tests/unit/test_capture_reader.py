"""CaptureThread against a real MJPEG-over-HTTP stream: bad frames, loss and recovery."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
from fixtures.mjpeg_server import MjpegServer, free_port
from fixtures.recording_slot import RecordingSlot

from edge_agent.capture.reader import CaptureThread
from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.capture.source import open_source
from edge_agent.config.schema import CameraConfig, SourceConfig
from edge_agent.pipeline.stats import CameraStats


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def _camera(url: str, **kw) -> CameraConfig:
    return CameraConfig(name="cam", source=SourceConfig(url=url, **kw))


def test_corrupt_jpegs_in_a_live_stream_are_skipped_and_counted():
    server = MjpegServer(fps=50)
    server.jpegs[3] = server.jpegs[3][:200]  # truncated JPEG
    server.jpegs[7] = b"not a jpeg" * 20
    stats = CameraStats("cam")
    stop = threading.Event()
    seen = []
    with server:
        thread = CaptureThread(
            _camera(server.url), RecordingSlot(stats, seen.append), stats, stop
        )
        thread.start()
        assert _wait(lambda: stats.get("frames") >= 40, 10.0)
        stop.set()
        thread.join(timeout=5.0)
    assert not thread.is_alive() and not thread.finished
    # two bad parts per 20-frame cycle: at least 2 counted, none passed on
    assert stats.get("bad_frames") >= 2
    assert stats.get("reconnects") == 0
    assert all(f.image.shape == (240, 320, 3) for f in seen)
    seqs = [f.seq for f in seen]
    assert seqs == list(range(1, len(seqs) + 1))


def test_wrong_shape_or_dtype_is_skipped_and_counted():
    """A source that sometimes yields a gray or float frame (e.g. a misbehaving backend)."""

    class Mangling:
        def __init__(self, src):
            self.src, self.n, self.ended = src, 0, False

        def read(self):
            img = self.src.read()
            self.n += 1
            if img is not None and self.n % 4 == 0:
                return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            if img is not None and self.n % 4 == 2:
                return img.astype(np.float32)
            return img

        def is_opened(self):
            return self.src.is_opened()

        def release(self):
            self.src.release()

    stats = CameraStats("cam")
    stop = threading.Event()
    seen = []
    with MjpegServer(fps=50) as server:
        thread = CaptureThread(
            _camera(server.url),
            RecordingSlot(stats, seen.append),
            stats,
            stop,
            opener=lambda cfg: Mangling(open_source(cfg)),
        )
        thread.start()
        assert _wait(lambda: stats.get("frames") >= 10, 10.0)
        stop.set()
        thread.join(timeout=5.0)
    assert stats.get("bad_frames") >= 8
    assert all(f.image.dtype == np.uint8 and f.image.ndim == 3 for f in seen)


def test_stream_that_disappears_and_returns_is_reconnected_within_5s(caplog):
    caplog.set_level("INFO", logger="edge_agent.capture.reader")
    server = MjpegServer(fps=25, port=free_port())
    stats = CameraStats("cam")
    slot = LatestFrameSlot(stats)
    stop = threading.Event()
    url = server.url
    thread = CaptureThread(_camera(url, reconnect_initial_s=0.1, reconnect_max_s=1.0), slot, stats, stop)
    thread.start()  # the camera is not there yet: the thread keeps trying
    try:
        time.sleep(0.5)
        assert thread.is_alive() and stats.snapshot()["connected"] is False
        server.start()
        assert _wait(lambda: stats.get("frames") >= 5, 5.0)
        assert stats.snapshot()["connected"] is True

        server.stop()  # the camera disappears
        assert _wait(lambda: stats.snapshot()["connected"] is False, 5.0)
        time.sleep(2.0)  # stays away long enough for the backoff to reach its maximum
        assert thread.is_alive()
        frames_before = stats.get("frames")

        server.start()  # ... and comes back on the same port
        t_back = time.monotonic()
        assert _wait(lambda: stats.get("frames") > frames_before, 5.0), "no frames within 5 s of the return"
        assert time.monotonic() - t_back < 5.0
        assert stats.get("reconnects") == 1
        assert stats.snapshot()["connected"] is True
        assert thread.is_alive() and not thread.finished
        assert any("recovered after" in r.getMessage() for r in caplog.records)
        assert any("lost" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        thread.join(timeout=6.0)
        server.stop()
    assert not thread.is_alive()


def test_frozen_stream_is_detected_by_the_read_timeout_and_recovered(monkeypatch):
    import edge_agent.capture.source as source_mod

    monkeypatch.setattr(source_mod, "READ_TIMEOUT_MS", 800)
    monkeypatch.setattr(source_mod, "OPEN_TIMEOUT_MS", 800)
    stats = CameraStats("cam")
    stop = threading.Event()
    with MjpegServer(fps=25) as server:
        thread = CaptureThread(
            _camera(server.url, reconnect_initial_s=0.1, reconnect_max_s=0.5),
            LatestFrameSlot(stats),
            stats,
            stop,
        )
        thread.start()
        try:
            assert _wait(lambda: stats.get("frames") >= 3, 5.0)
            server.pause()  # the camera freezes: the TCP connection stays open, nothing arrives
            assert _wait(lambda: stats.snapshot()["connected"] is False, 4.0), (
                "a frozen stream was not noticed"
            )
            server.resume()
            before = stats.get("frames")
            assert _wait(lambda: stats.get("frames") > before + 3, 5.0)
            assert stats.get("reconnects") >= 1 and thread.is_alive()
        finally:
            stop.set()
            thread.join(timeout=5.0)


def test_fps_limit_thins_a_live_stream_without_falling_behind():
    stats = CameraStats("cam")
    stop = threading.Event()
    seen = []
    with MjpegServer(fps=50) as server:
        thread = CaptureThread(
            _camera(server.url, fps_limit=10.0), RecordingSlot(stats, seen.append), stats, stop
        )
        thread.start()
        assert _wait(lambda: len(seen) >= 2, 5.0)
        t0, n0 = time.monotonic(), len(seen)
        time.sleep(1.5)
        rate = (len(seen) - n0) / (time.monotonic() - t0)
        stop.set()
        thread.join(timeout=5.0)
    assert 6.0 <= rate <= 11.0, rate
    gaps = [b.ts - a.ts for a, b in zip(seen[1:], seen[2:], strict=False)]
    assert min(gaps) >= 0.09  # never two frames closer than the limit allows
