"""HealthMonitor on generated clips with controlled timestamps: each condition raises exactly its
alert and its end; a normal night scene with people walking raises none."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.health_clips import Camera

from edge_agent.config.schema import HealthConfig
from edge_agent.health.alerts import snapshot_bytes
from edge_agent.health.monitor import HealthMonitor
from edge_agent.motion.gate import downscale_gray
from edge_agent.pipeline.stats import CameraStats

FPS = 5.0
CFG = HealthConfig(
    start_after_s=2.0,
    end_after_s=2.0,
    learn_s=3.0,
    frozen_after_s=3.0,
    stream_lost_after_s=2.0,
    stream_back_after_s=1.0,
    frame_timeout_s=1.0,
    scene_check_interval_s=0.4,
)


class Run:
    """Feeds a monitor frames at FPS (and a supervisor tick every 0.5 s), collecting messages."""

    def __init__(self, cfg: HealthConfig = CFG, camera: Camera | None = None):
        self.cam = camera or Camera()
        self.messages: list[dict] = []
        self.stats = CameraStats("cam1")
        self.mon = HealthMonitor("cam1", cfg, emit=lambda c, d: self.messages.append(d), stats=self.stats)
        self.t = 1000.0
        self.rebaselines: list[float] = []

    def frames(self, seconds: float, connected: bool = True, **kw) -> None:
        n = round(seconds * FPS)
        for _ in range(n):
            img = self.cam.frame(self.t, **kw)
            if self.mon.before_gate(img, self.t):
                self.rebaselines.append(self.t)
            self.mon.observe(img, downscale_gray(img, 180), self.t)
            self._tick(connected)
            self.t += 1.0 / FPS

    def repeat(self, seconds: float, img: np.ndarray) -> None:
        for _ in range(round(seconds * FPS)):
            self.mon.before_gate(img, self.t)
            self.mon.observe(img, downscale_gray(img, 180), self.t)
            self._tick(True)
            self.t += 1.0 / FPS

    def nothing(self, seconds: float) -> None:
        for _ in range(round(seconds * 2)):
            self.mon.tick(self.t, connected=False)
            self.t += 0.5

    def _tick(self, connected: bool) -> None:
        if round(self.t * FPS) % round(FPS / 2) == 0:
            self.mon.tick(self.t, connected)

    def seen(self) -> list[tuple[str, str]]:
        return [(m["type"], m["phase"]) for m in self.messages]


def test_normal_clip_with_people_walking_raises_nothing():
    r = Run()
    r.frames(40)
    assert r.seen() == []
    assert r.mon.learned and r.mon.switches == 0
    assert r.mon.last_match is not None and r.mon.last_match > 0.8
    assert r.stats.state["alerts"] == []


@pytest.mark.parametrize(
    "condition, kind",
    [
        ({"covered": True}, "covered"),
        ({"sprayed": True}, "covered"),
        ({"blur": 1.5}, "defocused"),
        ({"dx": 24, "dy": 6}, "moved"),
    ],
    ids=["cover", "spray", "defocus", "move"],
)
def test_condition_raises_exactly_its_alert_and_its_end(condition, kind):
    r = Run()
    r.frames(10)
    t_on = r.t
    r.frames(8, **condition)
    assert r.seen() == [(kind, "start")]
    assert r.stats.state["alerts"][0]["type"] == kind
    t_off = r.t
    r.frames(8)
    assert r.seen() == [(kind, "start"), (kind, "end")]
    start, end = r.messages
    assert start["id"] == end["id"] and start["alert_id"] != end["alert_id"]
    assert start["camera"] == "cam1" and start["severity"] in ("warning", "major", "critical")
    # the times are when the condition began and cleared, not when the debounce decided
    assert t_on - 0.01 <= start["started_at"] <= t_on + 1.0
    assert t_off - 0.01 <= end["ended_at"] <= t_off + 1.0
    assert end["duration_s"] == pytest.approx(end["ended_at"] - start["started_at"], abs=0.01)
    jpeg = snapshot_bytes(start)
    assert jpeg[:2] == b"\xff\xd8" and end["snapshot"] is None
    assert r.stats.state["alerts"] == []


def test_short_condition_is_debounced_away():
    r = Run()
    r.frames(10)
    r.frames(1.0, covered=True)  # shorter than start_after_s
    r.frames(5)
    assert r.seen() == []


def test_frozen_image_while_the_stream_runs():
    r = Run()
    r.frames(10)
    r.repeat(6, r.cam.frame(r.t))
    assert r.seen() == [("frozen", "start")]
    r.frames(4)
    assert r.seen() == [("frozen", "start"), ("frozen", "end")]


def test_stream_cut_reports_how_long_it_was_down():
    r = Run()
    r.frames(10)
    t_cut = r.t
    r.nothing(20)
    assert r.seen() == [("stream_lost", "start")]
    t_back = r.t
    r.frames(5)
    assert r.seen() == [("stream_lost", "start"), ("stream_lost", "end")]
    start, end = r.messages
    assert start["snapshot"] is None
    assert end["details"]["down_s"] == pytest.approx(t_back - t_cut, abs=1.5)


def test_ir_switch_is_a_day_night_alert_and_rebaselines():
    r = Run()
    r.frames(10)
    t_switch = r.t
    r.frames(12, ir=True)
    assert r.seen() == [("day_night", "start")]
    assert r.rebaselines == [t_switch]
    assert r.messages[0]["details"]["mode"] == "night" and r.messages[0]["details"]["luma_jump"] >= 10
    t_back = r.t
    r.frames(12)
    assert r.seen() == [("day_night", "start"), ("day_night", "end")]
    assert r.rebaselines == [t_switch, t_back] and r.mon.switches == 2


def test_covering_a_colour_camera_is_not_a_day_night_switch():
    r = Run(camera=Camera(noise=0.5))  # a clean sensor: a covered lens looks gray, not coloured
    r.frames(10)
    r.frames(8, covered=True)
    assert r.seen() == [("covered", "start")] and r.rebaselines == []


def test_moved_camera_view_is_adopted_after_moved_accept_s():
    r = Run(CFG.model_copy(update={"moved_accept_s": 6.0}))
    r.frames(10)
    r.frames(14, dx=24)
    assert r.seen() == [("moved", "start"), ("moved", "end")]
    assert r.messages[1]["details"]["accepted_new_view"] is True
    r.frames(6, dx=24)
    assert len(r.messages) == 2


def test_ignored_types_and_disabled_monitor_raise_nothing():
    r = Run(CFG.model_copy(update={"ignore": ["covered"]}))
    r.frames(10)
    r.frames(8, covered=True)
    assert r.seen() == []
    r = Run(CFG.model_copy(update={"enabled": False}))
    r.frames(5)
    r.frames(8, covered=True)
    assert r.seen() == []


def test_bad_input_is_a_clear_error():
    mon = HealthMonitor("cam1", CFG)
    with pytest.raises(ValueError, match="small uint8 gray frame"):
        mon.observe(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float32), 0.0)
    with pytest.raises(ValueError, match="uint8 BGR"):
        mon.before_gate(np.zeros((10, 10, 3), np.float64), 0.0)


def test_capture_falling_behind_from_the_drop_counters():
    stats = CameraStats("cam1")
    msgs = []
    mon = HealthMonitor(
        "cam1", CFG.model_copy(update={"drop_window_s": 5.0}), lambda c, d: msgs.append(d), stats
    )
    t = 0.0

    def seconds(n: float, read: int, dropped: int) -> None:
        nonlocal t
        for _ in range(round(n * 2)):
            stats.inc("frames", read)
            stats.inc("frames_dropped", dropped)
            mon._last_frame_ts = t  # frames arrive (observe() is not what this test is about)
            mon.tick(t, connected=True)
            t += 0.5

    seconds(10, 5, 1)  # 20% dropped: fine
    assert msgs == []
    seconds(10, 5, 4)  # 80% dropped
    assert [(m["type"], m["phase"]) for m in msgs] == [("capture_behind", "start")]
    assert msgs[0]["details"]["dropped"] > 0.5 * msgs[0]["details"]["frames"]
    seconds(12, 5, 0)
    assert [(m["type"], m["phase"]) for m in msgs] == [("capture_behind", "start"), ("capture_behind", "end")]
