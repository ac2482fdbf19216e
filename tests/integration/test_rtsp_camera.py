"""The agent's capture against a real RTSP camera: GStreamer's RTSP server (tests/rtsp_server.py)
serving live 1080p H.264 on 127.0.0.1, read through the same CaptureThread the agent builds for a
camera whose source.url is rtsp:// (edge_agent/app.py).

Skips only when the Debian GStreamer packages are missing (tests/rtsp.py names them).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
from fixtures.recording_slot import RecordingSlot
from rtsp import RtspCamera

import edge_agent.capture.reader as reader_mod
from edge_agent.capture.probe import explain
from edge_agent.capture.reader import CaptureThread
from edge_agent.config.schema import CameraConfig
from edge_agent.pipeline.stats import CameraStats

pytestmark = pytest.mark.slow

USER, PASSWORD = "admin", "s3cret-pw"


class Capture:
    """A camera as the agent configures it (schema-validated dict, like the YAML) and its thread."""

    def __init__(self, name: str, url: str, **source):
        self.camera = CameraConfig.model_validate({"name": name, "source": {"url": url, **source}})
        self.stats = CameraStats(name)
        self.stop = threading.Event()
        self.frames: list = []
        self.arrivals: list[float] = []  # time.monotonic() of every frame
        self.thread = CaptureThread(
            self.camera, RecordingSlot(self.stats, self._seen), self.stats, self.stop
        )

    def _seen(self, frame) -> None:
        self.arrivals.append(time.monotonic())
        if len(self.frames) < 40:  # keep a few 6 MB frames, not all of them
            self.frames.append(frame)

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10.0)
        assert not self.thread.is_alive(), "the capture thread did not stop"

    def wait(self, pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.02)
        return pred()


@pytest.mark.parametrize("auth", ["digest", "basic"])
def test_capture_reads_1080p_h264_frames_from_an_rtsp_camera(tmp_path, auth):
    with RtspCamera(tmp_path, "/cam1", user=USER, password=PASSWORD, auth=auth, fps=10) as cam:
        with Capture("front", cam.url) as cap:
            assert cap.wait(lambda: len(cap.arrivals) >= 25, 20.0), (
                f"{len(cap.arrivals)} frames in 20 s\n{cam.log_tail()}"
            )
            t0, n0 = time.monotonic(), len(cap.arrivals)
            time.sleep(2.0)
            rate = (len(cap.arrivals) - n0) / (time.monotonic() - t0)
            snap = cap.stats.snapshot()
    assert 7.0 <= rate <= 13.0, f"{rate:.1f} fps from a 10 fps camera"  # live, not a replayed burst
    frames = cap.frames
    assert all(f.image.shape == (1080, 1920, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    # real decoded pictures: SMPTE bars (saturated colours), scrolling, so consecutive frames differ
    first, last = frames[0].image, frames[-1].image
    assert first.std() > 40 and first.max() > 150
    assert float(np.abs(first.astype(np.int16) - last.astype(np.int16)).mean()) > 5
    assert snap["connected"] is True and snap["reconnects"] == 0 and snap["bad_frames"] == 0
    assert cam.returncode == 0  # SIGTERM: clean exit


def test_capture_survives_the_camera_going_away_and_reads_again_within_5_s_of_its_return(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge_agent.capture")
    cam = RtspCamera(tmp_path, "/cam1", user=USER, password=PASSWORD, fps=10).start()
    try:
        # the schema's default backoff: 0.5 s doubling up to 5 s
        with Capture("gate", cam.url) as cap:
            assert cap.wait(lambda: len(cap.arrivals) >= 10, 20.0), cam.log_tail()
            cam.stop()  # the camera goes away (server stopped, its TCP connections closed)
            down_at = time.monotonic()
            assert cap.wait(lambda: cap.stats.snapshot()["connected"] is False, 10.0)
            lost_after = time.monotonic() - down_at
            assert cap.thread.is_alive()
            time.sleep(8.0)  # long enough for the backoff to reach its 5 s maximum
            before = len(cap.arrivals)

            cam.start()  # ... and comes back on the same port
            back = cam.started_at
            assert cap.wait(lambda: len(cap.arrivals) > before, 15.0), "no frame within 15 s of the return"
            delay = cap.arrivals[before] - back
            print(
                f"RTSP camera: loss noticed after {lost_after:.2f} s; first frame {delay:.2f} s after its return"
            )
            assert delay < 5.0, f"frames flowed again only {delay:.1f} s after the camera returned"
            assert cap.wait(lambda: len(cap.arrivals) > before + 10, 5.0)  # and keep flowing
            snap = cap.stats.snapshot()
            assert snap["connected"] is True and snap["reconnects"] == 1
    finally:
        cam.stop()
    assert lost_after < 5.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost" in m and "camera gate" in m for m in messages)
    assert any("recovered after" in m for m in messages)
    assert not [m for m in messages if PASSWORD in m]


CASES = {
    "wrong path": ("/nope", USER, PASSWORD, "no stream at path /nope (RTSP 404 Not Found)"),
    "wrong password": ("/cam1", USER, "not-the-password", "refused the user name or password (RTSP 401"),
    "no credentials": ("/cam1", None, None, "asks for a user name and password and the URL has none"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_path_or_credentials_is_one_clear_rate_limited_error(
    tmp_path, caplog, capfd, monkeypatch, case
):
    path, user, password, reason = CASES[case]
    caplog.set_level(logging.DEBUG, logger="edge_agent.capture")
    with RtspCamera(
        tmp_path, "/cam1", user=USER, password=PASSWORD, auth="digest", width=320, height=240
    ) as cam:
        url = cam.url_for(path, user, password)
        with Capture("porch", url, reconnect_initial_s=0.1, reconnect_max_s=0.2) as cap:
            assert cap.wait(lambda: len(_retries(caplog)) >= 8, 15.0), "the camera is not retried"
            warnings = _warnings(caplog)
            # a reminder, once it is due, says it again with the number of attempts
            monkeypatch.setattr(reader_mod, "LOG_REPEAT_S", 1.0)
            assert cap.wait(lambda: len(_warnings(caplog)) >= 2, 5.0)
            retries = len(_retries(caplog))
        assert cap.stats.get("frames") == 0 and cap.thread.is_alive() is False
        assert cap.stats.snapshot()["connected"] is False
    assert len(warnings) == 1, f"{len(warnings)} warnings for {retries} attempts: {warnings}"
    first = warnings[0]
    shown = cam.url_for(path, user, "***" if password else None)
    assert "camera porch" in first and shown in first and reason in first, first
    reminder = _warnings(caplog)[1]
    assert "still cannot open" in reminder and "attempt(s)" in reminder and reason in reminder
    everything = "\n".join(r.getMessage() for r in caplog.records)
    if password:
        assert password not in everything
    # OpenCV/FFmpeg print nothing of their own per retry ("[rtsp @ 0x...] method DESCRIBE failed")
    err = capfd.readouterr().err
    assert "DESCRIBE" not in err and "VIDEOIO" not in err, err[-2000:]


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("edge_agent")
    ]


def _retries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]


def test_probe_authenticates_like_a_client_and_reports_a_good_camera_as_answering(tmp_path):
    """The diagnosis really logs in (Digest and Basic): with the right password the camera says 200."""
    for auth in ("digest", "basic"):
        with RtspCamera(
            tmp_path, "/cam1", user=USER, password=PASSWORD, auth=auth, width=320, height=240
        ) as cam:
            assert "RTSP 200 OK" in explain(cam.url)
            assert "RTSP 401" in explain(cam.url_for("/cam1", USER, "bad"))
        assert "connection refused" in explain(cam.url)
