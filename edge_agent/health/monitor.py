"""HealthMonitor: one camera's health, from its frames and its capture state.

The camera loop calls, per frame:
    before_gate(image, ts) -> bool      day/night (IR cut) switch; True = re-baseline the motion gate
    observe(image, small, ts)           frozen, covered, moved, defocused (small = gate's gray frame)
and the supervisor calls tick(ts, connected) about twice a second: stream lost / back, capture
falling behind. Conditions are debounced into alerts by an AlertBook (alerts.py).

- stream_lost: not connected, or no frame for frame_timeout_s; the end message says how long the
  stream was down (duration_s / details.down_s).
- frozen: consecutive small frames differ by <= frozen_max_diff (mean gray levels) for
  frozen_after_s while frames keep arriving.
- covered: contrast below cover_contrast_ratio x baseline (or below cover_min_contrast at all).
- defocused: sharpness below defocus_ratio x baseline while contrast holds.
- moved: the view's correlation with a slowly adapting reference falls below moved_min_match;
  after moved_accept_s the new view becomes the reference
  and the alert ends.
- day_night: the image turned gray (saturation <= ir_gray_saturation) with a luma rise of at least
  ir_luma_jump and its structure kept (so a covered lens is not a switch); it ends when colour
  returns. Every switch re-baselines the gate, the baselines and the reference.
frozen is checked on every frame; covered, defocused and moved (features of the small frame) at
most every scene_check_interval_s. Baselines (contrast, sharpness, reference view) are learned for learn_s after the first frame and
after every switch, then follow the view slowly (time constant baseline_adapt_s) while no image
condition holds. Times are the frames' own timestamps (seconds), so tests can drive it with any clock.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from edge_agent.config.schema import HealthConfig
from edge_agent.health import conditions as cond
from edge_agent.health.alerts import AlertBook, Emit

IMAGE_CONDITIONS = ("covered", "defocused", "moved")
SWITCH_WINDOW_S = 3.0  # luma and structure before a switch are taken from this far back
SWITCH_MIN_STRUCTURE = 0.5  # a switch keeps at least this share of the view's gray std


class HealthMonitor:
    def __init__(
        self,
        camera: str,
        cfg: HealthConfig | Callable[[], HealthConfig],
        emit: Emit | None = None,
        stats: Any = None,
        site: str | None = None,
    ):
        self.camera = camera
        self._cfg = cfg
        self.stats = stats
        self._lock = threading.RLock()
        self.book = AlertBook(
            camera, emit, on_change=self._on_change, site=site, snapshot_width=lambda: self.cfg.snapshot_width
        )
        self.switches = 0  # accepted day/night switches
        self.last_match: float | None = None  # the latest scene match (for tests and the status)
        self._first_ts: float | None = None
        self._last_frame_ts: float | None = None
        self._last_image: np.ndarray | None = None
        self._prev_small: np.ndarray | None = None
        # day/night
        self._mode: str | None = None  # "color" | "gray"
        self._seen_color = False
        self._recent: collections.deque[tuple[float, float, float]] = collections.deque()  # ts, luma, std
        # baselines
        self._learn_until: float | None = None
        self._acc: list[Any] = [0, 0.0, 0.0, None]  # n, contrast sum, sharpness sum, signature sum
        self._base_contrast: float | None = None
        self._base_sharp: float | None = None
        self._ref: np.ndarray | None = None
        self._last_check: float | None = None
        self._last_adapt: float | None = None
        self._moved_raw: bool | None = None
        self._last_jump = 0.0
        # capture falling behind
        self._drops: collections.deque[tuple[float, int, int]] = collections.deque()
        if stats is not None:
            stats.set_state(alerts=[])

    @property
    def cfg(self) -> HealthConfig:
        return self._cfg() if callable(self._cfg) else self._cfg

    @property
    def learned(self) -> bool:
        return self._base_contrast is not None

    def active(self) -> list[dict[str, Any]]:
        return self.book.summaries()

    def _on_change(self, summaries: list[dict[str, Any]]) -> None:
        if self.stats is not None:
            self.stats.set_state(alerts=summaries)

    def _feed(self, kind: str, raw: bool | None, ts: float, hold: float, clear: float, **kw: Any) -> None:
        cfg = self.cfg
        if kind in cfg.ignore:
            raw = False if self.book.is_open(kind) else None
        self.book.update(kind, raw, ts, hold, clear, **kw)

    def _snapshot(self) -> np.ndarray | None:
        return self._last_image

    # ------------------------------------------------------------------ before the motion gate
    def before_gate(self, image: np.ndarray, ts: float) -> bool:
        """Watch for a day/night (IR cut) switch; True when the motion gate should re-baseline."""
        cfg = self.cfg
        if not cfg.enabled:
            return False
        image = cond.check_color(image)
        with self._lock:
            self._last_image = image
            sat = cond.saturation(image)
            view = cond.color_view(image)
            mean, sd = cv2.meanStdDev(np.ascontiguousarray(view[:, :, 1] if view.ndim == 3 else view))
            luma, std = float(mean[0, 0]), float(sd[0, 0])
            while self._recent and ts - self._recent[0][0] > SWITCH_WINDOW_S:
                self._recent.popleft()
            before = self._recent[0] if self._recent else None
            self._recent.append((ts, luma, std))
            gray = sat <= cfg.ir_gray_saturation
            color = sat >= cfg.ir_color_saturation
            switched = False
            if self._mode is None:
                self._mode = "gray" if gray else "color" if color else None
            elif before is not None and std >= SWITCH_MIN_STRUCTURE * before[2]:
                jump = luma - before[1]
                if self._mode == "color" and gray and jump >= cfg.ir_luma_jump:
                    self._switch("gray", ts, sat, jump)
                    switched = True
                elif self._mode == "gray" and color:
                    self._switch("color", ts, sat, jump)
                    switched = True
            if self._mode == "color":
                self._seen_color = True
            night = self._mode == "gray" and self._seen_color
            self._feed(
                "day_night",
                night,
                ts,
                cfg.start_after_s,
                cfg.end_after_s,
                details=lambda: {
                    "mode": "night",
                    "saturation": round(sat, 2),
                    "luma": round(luma, 1),
                    "luma_jump": round(self._last_jump, 1),
                },
                snapshot=self._snapshot,
            )
            return switched

    def _switch(self, mode: str, ts: float, sat: float, jump: float) -> None:
        self._mode = mode
        self.switches += 1
        self._last_jump = jump
        self.book.set_details("day_night", luma_jump_back=round(jump, 1))
        self._recent.clear()
        self._prev_small = None
        self._reset_baselines(ts)

    def _reset_baselines(self, ts: float) -> None:
        self._learn_until = ts + self.cfg.learn_s
        self._acc = [0, 0.0, 0.0, None]
        self._base_contrast = self._base_sharp = self._ref = None
        self._last_adapt = None
        self._moved_raw = None

    # ------------------------------------------------------------------ after the motion gate
    def observe(self, image: np.ndarray, small: np.ndarray, ts: float) -> None:
        """Frozen, covered, defocused and moved, from the gate's small gray frame."""
        cfg = self.cfg
        if not cfg.enabled:
            return
        small = cond.check_small(small)
        with self._lock:
            self._last_image = image
            if self._first_ts is None:
                self._first_ts = ts
            self._last_frame_ts = ts
            self._feed("stream_lost", False, ts, cfg.stream_lost_after_s, cfg.stream_back_after_s)
            prev, self._prev_small = self._prev_small, small
            frozen = None if prev is None else cond.frame_difference(prev, small) <= cfg.frozen_max_diff
            self._feed("frozen", frozen, ts, cfg.frozen_after_s, cfg.end_after_s, snapshot=self._snapshot)
            # the image checks run at most every scene_check_interval_s (debounce times are seconds)
            if self._last_check is not None and ts - self._last_check < cfg.scene_check_interval_s:
                return
            self._last_check = ts
            ft = cond.features(small)

            if self._learn_until is None:
                self._reset_baselines(ts)
            hold, clear = cfg.start_after_s, cfg.end_after_s
            absolute = ft.contrast < cfg.cover_min_contrast
            if not self.learned:
                self._feed("covered", True if absolute else None, ts, hold, clear, snapshot=self._snapshot)
                if not absolute:
                    self._learn(ft, ts)
                return
            ratio_c = ft.contrast / max(self._base_contrast, 1e-6)
            ratio_s = ft.sharpness / max(self._base_sharp, 1e-6)
            covered = absolute or ratio_c < cfg.cover_contrast_ratio
            details_c = {"contrast_ratio": round(ratio_c, 3), "luma": round(ft.luma, 1)}
            self._feed("covered", covered, ts, hold, clear, details=details_c, snapshot=self._snapshot)
            defocused = None if covered else ratio_s < cfg.defocus_ratio
            details_s = {"sharpness_ratio": round(ratio_s, 3)}
            self._feed("defocused", defocused, ts, hold, clear, details=details_s, snapshot=self._snapshot)

            self._check_scene(ft, ts, covered)
            if (
                not covered
                and not defocused
                and not self._moved_raw
                and not any(self.book.is_open(k) or self.book.pending(k) for k in IMAGE_CONDITIONS)
            ):
                self._adapt(ft, ts)
            else:
                self._last_adapt = ts

    def _check_scene(self, ft: cond.FrameFeatures, ts: float, covered: bool) -> None:
        cfg = self.cfg
        if covered or self._ref is None:
            raw = None
        else:
            match = self.last_match = cond.scene_match(ft.signature, self._ref)
            raw = match < cfg.moved_min_match
            opened = self.book.open.get("moved")
            if raw and opened is not None and ts - opened.started_at >= cfg.moved_accept_s:
                self._ref = ft.signature.copy()  # the new view is accepted as the reference
                self.book.set_details("moved", accepted_new_view=True)
                raw = False
        self._moved_raw = raw
        details = {"match": None if self.last_match is None else round(self.last_match, 3)}
        self._feed(
            "moved", raw, ts, cfg.start_after_s, cfg.end_after_s, details=details, snapshot=self._snapshot
        )

    def _learn(self, ft: cond.FrameFeatures, ts: float) -> None:
        acc = self._acc
        acc[0] += 1
        acc[1] += ft.contrast
        acc[2] += ft.sharpness
        acc[3] = (
            ft.signature.copy()
            if acc[3] is None or acc[3].shape != ft.signature.shape
            else acc[3] + ft.signature
        )
        if ts >= self._learn_until:
            n = acc[0]
            self._base_contrast, self._base_sharp = acc[1] / n, acc[2] / n
            self._ref = cond.normalized(acc[3])  # renormalized mean view
            self._last_adapt = ts

    def _adapt(self, ft: cond.FrameFeatures, ts: float) -> None:
        cfg = self.cfg
        dt = 0.0 if self._last_adapt is None else max(0.0, ts - self._last_adapt)
        self._last_adapt = ts
        a = min(1.0, dt / cfg.baseline_adapt_s)
        if a <= 0:
            return
        self._base_contrast += a * (ft.contrast - self._base_contrast)
        self._base_sharp += a * (ft.sharpness - self._base_sharp)
        if self._ref is not None and self._ref.shape == ft.signature.shape:
            self._ref = cond.normalized(self._ref + a * (ft.signature - self._ref))

    # ------------------------------------------------------------------ periodic
    def tick(self, ts: float, connected: bool) -> None:
        """Stream lost/back and capture falling behind; call about twice a second."""
        cfg = self.cfg
        if not cfg.enabled:
            return
        with self._lock:
            if self._first_ts is None:
                self._first_ts = ts
            fresh = self._last_frame_ts is not None and ts - self._last_frame_ts <= cfg.frame_timeout_s
            lost = not connected or not fresh
            self._feed(
                "stream_lost",
                lost,
                ts,
                cfg.stream_lost_after_s,
                cfg.stream_back_after_s,
                details=lambda: {"connected": bool(connected)},
            )
            if self.stats is not None:
                self._check_drops(ts)

    def _check_drops(self, ts: float) -> None:
        cfg = self.cfg
        frames, dropped = self.stats.get("frames"), self.stats.get("frames_dropped")
        self._drops.append((ts, frames, dropped))
        while len(self._drops) > 2 and ts - self._drops[1][0] >= cfg.drop_window_s:
            self._drops.popleft()
        t0, f0, d0 = self._drops[0]
        if ts - t0 < min(cfg.drop_window_s, 5.0) or frames - f0 <= 0:
            raw = None  # too short a window, or no frames read at all (that is stream_lost)
        else:
            raw = (dropped - d0) / (frames - f0) > cfg.max_drop_fraction
        self._feed(
            "capture_behind",
            raw,
            ts,
            cfg.start_after_s,
            cfg.end_after_s,
            details=lambda: {"dropped": dropped - d0, "frames": frames - f0, "window_s": round(ts - t0, 1)},
        )
