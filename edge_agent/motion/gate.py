"""MotionGate: cheap, debounced motion detection on a downscaled gray copy of each frame.

Per frame (all on a small copy, cfg.frame_height rows, ~180 by default):
1. downscale: a strided view of the green channel (a cheap stand-in for luma) subsamples the frame
   by the integer factor height // frame_height, and cv2.INTER_AREA takes care of any remainder
   (no full-size gray conversion: ~0.1 ms for 1080p instead of ~1-4 ms for cvtColor + resize;
   the blur of step 2 then does the smoothing that subsampling skipped);
2. Gaussian blur (cfg.blur_kernel), then absdiff against a running background
   (cv2.accumulateWeighted with cfg.background_alpha, updated after the comparison);
3. threshold: a pixel changed when |frame - background| > effective_threshold, where
   effective_threshold = base * 4 ** (0.5 - sensitivity)
   (sensitivity 0.5 = base as given, 1.0 = half of it, 0.0 = twice it; clamped to 1..255).
   With cfg.noise_factor > 0 (the default) base follows the camera's measured temporal noise:
   base = clamp(noise_factor * noise_sigma, min_threshold, threshold), where noise_sigma is a
   running estimate (robust median of |frame - background| on frames without motion) of the noise
   of the blurred small frame; a clean daylight scene keeps cfg.threshold, a dark noisy one goes
   down to what its noise allows, so a person a few gray levels brighter is seen at night.
   noise_factor 0 keeps the fixed cfg.threshold;
4. masked areas (cfg.masks, normalized polygons) are ignored; changed_fraction is the changed
   share of the unmasked pixels;
5. a lighting jump (changed_fraction >= cfg.lighting_change_fraction, or the whole picture x1.5
   brighter or darker from one frame to the next: IR cut switch, lights on)
   re-baselines the background and returns relit=True; it never turns motion ON and does not count
   toward min_motion_frames. A gradual global change (auto exposure, lamps warming up) is absorbed
   by comparing against the background scaled by the median ratio frame / background; a local
   change does not move the median, so real motion still stands out;
6. otherwise dilate, find contours, keep those with area >= cfg.min_area (fraction of the frame)
   and, when zones exist, those touching a zone; with cfg.reject_lighting, a region whose change
   fades out softly beyond its edge, or is the background's own texture scaled by a smooth light
   (edge_agent.motion.lighting), is light on the scene (headlights, a torch on a wall, a lamp), not
   something moving in front of it: it is no motion, and the background takes its new look at once;
7. debounce: ON after cfg.min_motion_frames consecutive motion frames, OFF after cfg.off_delay_s
   seconds without motion.
Boxes are normalized (x, y, w, h). Not thread-safe across update() callers, but reconfigure()
and rebaseline() may be called from another thread (a lock guards the state).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from edge_agent.config.schema import MotionConfig
from edge_agent.motion import lighting
from edge_agent.records import MotionResult

_DILATE_KERNEL = np.ones((3, 3), np.uint8)
_DILATE_ITERATIONS = lighting.GROW
_RING_KERNEL = np.ones((2 * lighting.SOFT_RING + 1,) * 2, np.uint8)  # a light region's ring
LIGHT_HOLD = 20  # frames the background holds still under a light before it learns it (~2 s)
CHANGED_RATE = 0.1  # changed pixels join the background this much slower
NOISE_RATE = 0.05  # running noise estimate: weight of each quiet frame
NOISE_BINS, NOISE_RANGE = 128, 32.0  # histogram of |frame - background| for the robust median
MAD_TO_SIGMA = 1.4826  # Gaussian sigma from the median absolute deviation


def effective_threshold(threshold: int, sensitivity: float) -> int:
    """The per-pixel difference that counts as change, after applying sensitivity (0..1)."""
    return int(min(255, max(1, round(threshold * 4.0 ** (0.5 - sensitivity)))))


def noise_threshold(cfg: MotionConfig, noise_sigma: float | None) -> int:
    """The per-pixel threshold for the measured noise (before sensitivity); see the module docstring."""
    if cfg.noise_factor <= 0 or noise_sigma is None:
        return cfg.threshold
    floor = min(cfg.min_threshold, cfg.threshold)
    return int(min(cfg.threshold, max(floor, round(cfg.noise_factor * noise_sigma))))


def hist_median(hist: np.ndarray) -> float:
    """The median of a histogram as a fraction of its range (interpolated within the bin)."""
    total = float(hist.sum())
    cum = np.cumsum(hist)
    i = min(int(np.searchsorted(cum, total / 2)), len(hist) - 1)
    below = cum[i - 1] if i > 0 else 0.0
    frac = (total / 2 - below) / max(hist[i], 1.0)
    return (i + frac) / len(hist)


def robust_sigma(diff: np.ndarray, mask: np.ndarray | None) -> float | None:
    """Gaussian sigma of a float |difference| image from its median (interpolated histogram)."""
    hist = cv2.calcHist([diff], [0], mask, [NOISE_BINS], [0.0, NOISE_RANGE]).ravel()
    if float(hist.sum()) < 100:
        return None
    return MAD_TO_SIGMA * hist_median(hist) * NOISE_RANGE


def small_size(height: int, width: int, frame_height: int) -> tuple[int, int]:
    """(rows, cols) of the downscaled copy; never upscales."""
    rows = min(frame_height, height)
    cols = max(1, round(width * rows / height))
    return rows, cols


def downscale_gray(image: np.ndarray, frame_height: int) -> np.ndarray:
    """A small contiguous uint8 gray copy of a BGR (or gray) frame, frame_height rows high."""
    if image.ndim == 3:
        plane = image[:, :, 1] if image.shape[2] >= 3 else image[:, :, 0]
    else:
        plane = image
    h, w = plane.shape
    rows, cols = small_size(h, w, frame_height)
    step = max(1, h // rows)
    if step > 1:
        plane = plane[::step, ::step]
    if plane.shape != (rows, cols):
        return cv2.resize(np.ascontiguousarray(plane), (cols, rows), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(plane)


def rasterize(polygons: list[list[list[float]]], rows: int, cols: int) -> np.ndarray:
    """A uint8 image (255 inside any polygon) of normalized polygons at the given size."""
    out = np.zeros((rows, cols), np.uint8)
    if polygons:
        scale = np.array([cols - 1, rows - 1], np.float64)
        pts = [np.round(np.asarray(p, np.float64) * scale).astype(np.int32) for p in polygons]
        cv2.fillPoly(out, pts, 255)
    return out


class MotionGate:
    def __init__(self, cfg: MotionConfig):
        self._lock = threading.Lock()
        self.cfg = cfg
        self.small: np.ndarray | None = None  # the last downscaled gray frame (before blur)
        self.zones_hit: list[str] = []  # names of the zones touched by the last frame's motion
        self._bg: np.ndarray | None = None  # float32 running background of the blurred small frame
        self._shape: tuple[int, int] | None = None
        self._keep: np.ndarray | None = None  # 255 where motion counts (outside masks), None = all
        self._keep_count = 0
        self._zones: list[tuple[str, np.ndarray]] = []
        self._active = False
        self._streak = 0
        self._last_motion_ts: float | None = None
        self.noise_sigma: float | None = None  # running temporal noise of the blurred small frame
        self._lit: list[tuple[np.ndarray, tuple[int, int]]] = []  # this frame's regions judged light
        self._held: np.ndarray | None = None  # frames in a row each pixel has been under a light
        self._solid: list[tuple[int, int, int, int]] = []  # last frame's regions that were not light
        self._apply(cfg)

    # ------------------------------------------------------------------ configuration
    def _apply(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self._set_threshold()
        self._ksize = (cfg.blur_kernel, cfg.blur_kernel)
        self._shape = None  # masks and zones are rasterized again on the next frame

    def _set_threshold(self) -> None:
        cfg = self.cfg
        base = noise_threshold(cfg, self.noise_sigma)
        thresh = effective_threshold(base, cfg.sensitivity)
        if cfg.noise_factor > 0:
            thresh = max(thresh, min(cfg.min_threshold, cfg.threshold))
        self._thresh = thresh

    @property
    def threshold(self) -> int:
        """The per-pixel threshold in use now (after noise adaptation and sensitivity)."""
        return self._thresh

    def reconfigure(self, cfg: MotionConfig) -> None:
        """Apply a new config live. The background is kept unless frame_height changed."""
        with self._lock:
            if cfg.frame_height != self.cfg.frame_height:
                self._bg = None
            self._apply(cfg)

    def rebaseline(self) -> None:
        """Forget the background; the next frame becomes the new one (no motion from it)."""
        with self._lock:
            self._bg = None
            self._streak = 0

    @property
    def active(self) -> bool:
        return self._active

    def _rasterize(self, rows: int, cols: int) -> None:
        cfg = self.cfg
        if cfg.masks:
            masked = rasterize([m.points for m in cfg.masks], rows, cols)
            self._keep = cv2.bitwise_not(masked)
            self._keep_count = int(cv2.countNonZero(self._keep))
        else:
            self._keep = None
            self._keep_count = rows * cols
        self._zones = [(z.name, rasterize([z.points], rows, cols)) for z in cfg.zones]
        self._shape = (rows, cols)

    # ------------------------------------------------------------------ per frame
    def update(self, image_bgr: np.ndarray, ts: float) -> MotionResult:
        if (
            not isinstance(image_bgr, np.ndarray)
            or image_bgr.dtype != np.uint8
            or image_bgr.ndim not in (2, 3)
        ):
            raise ValueError(
                "MotionGate.update needs a uint8 BGR (HxWx3) or gray (HxW) image, got "
                + (
                    f"{image_bgr.dtype} {image_bgr.shape}"
                    if isinstance(image_bgr, np.ndarray)
                    else type(image_bgr).__name__
                )
            )
        if image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
            raise ValueError("MotionGate.update got an empty image")
        with self._lock:
            return self._update(image_bgr, ts)

    def _update(self, image: np.ndarray, ts: float) -> MotionResult:
        cfg = self.cfg
        small = downscale_gray(image, cfg.frame_height)
        self.small = small
        rows, cols = small.shape
        if self._shape != (rows, cols):
            self._rasterize(rows, cols)
            if self._bg is not None and self._bg.shape != (rows, cols):
                self._bg = None  # the camera changed resolution
        blurred = cv2.GaussianBlur(small, self._ksize, 0) if cfg.blur_kernel > 1 else small
        self.zones_hit = []

        if self._bg is None:
            self._bg = blurred.astype(np.float32)
            self._streak = 0
            return self._debounce(False, ts, [], 0.0)

        changed, n_changed = self._changed(blurred, 1.0)
        gain = 1.0
        if n_changed and (gain := lighting.global_gain(blurred, self._bg, self._keep)) != 1.0:
            # a global change (auto exposure, lamps warming up): compare with the background
            # re-exposed to the frame's brightness too; a pixel has changed only when it differs
            # from both (a local light raises the mean, and the unlit parts must stay quiet)
            relit_changed, _ = self._changed(blurred, gain)
            changed = cv2.bitwise_and(changed, relit_changed)
            n_changed = cv2.countNonZero(changed)
        fraction = n_changed / self._keep_count if self._keep_count else 0.0

        if fraction >= cfg.lighting_change_fraction or not 1 / lighting.GAIN_JUMP < gain < lighting.GAIN_JUMP:
            self._bg = blurred.astype(np.float32)  # a lighting jump: the new look is the background
            self._streak = 0
            if cfg.noise_factor > 0:  # new light, new gain: new noise, learned again (threshold at max until then)
                self.noise_sigma = None
                self._set_threshold()
            result = self._debounce(False, ts, [], fraction)
            result.relit = True
            return result

        boxes: list[tuple[float, float, float, float]] = []
        self._lit = []
        if n_changed:
            boxes = self._boxes(changed, rows, cols, blurred, gain)
        if not boxes and not self._lit and gain == 1.0 and cfg.noise_factor > 0:  # a quiet, steady frame
            self._update_noise(blurred)
        self._follow(blurred, changed if n_changed else None, self._light_mask(rows, cols))
        return self._debounce(bool(boxes), ts, boxes, fraction)

    def _light_mask(self, rows: int, cols: int) -> np.ndarray | None:
        """255 where this frame's change is light on the scene (regions and their rings); counts how
        many frames in a row each pixel has been lit (self._held)."""
        if not self._lit:
            self._held = None
            return None
        lit = np.zeros((rows, cols), np.uint8)
        for mask, (x0, y0) in self._lit:
            h, w = mask.shape
            cv2.bitwise_or(lit[y0 : y0 + h, x0 : x0 + w], mask, dst=lit[y0 : y0 + h, x0 : x0 + w])
        if self._held is None or self._held.shape != lit.shape:
            self._held = np.zeros(lit.shape, np.uint16)
        self._held = np.where(lit > 0, np.minimum(self._held + 1, 60000), 0).astype(np.uint16)
        return lit

    def _follow(self, blurred: np.ndarray, changed: np.ndarray | None, lit: np.ndarray | None = None) -> None:
        """Move the background toward the frame; changed pixels follow CHANGED_RATE times slower,
        so a moving object leaves no ghost trail (a low night threshold would see it) while a
        parked car still becomes background after a while. Under a passing light (lit) the
        background holds still, so the light leaves no ghost behind; a light that stays longer than
        LIGHT_HOLD frames (a lamp switched on) is then learned at the normal rate."""
        alpha = self.cfg.background_alpha
        if changed is None and lit is None:
            cv2.accumulateWeighted(blurred, self._bg, alpha)
            return
        still = np.zeros_like(blurred) if changed is None else changed
        held = None
        if lit is not None:
            held = cv2.bitwise_and(lit, (self._held > LIGHT_HOLD).astype(np.uint8) * 255)
            still = cv2.bitwise_or(still, lit)
        cv2.accumulateWeighted(blurred, self._bg, alpha, mask=cv2.bitwise_not(still))
        if changed is not None:
            slow = changed if lit is None else cv2.bitwise_and(changed, cv2.bitwise_not(lit))
            cv2.accumulateWeighted(blurred, self._bg, alpha * CHANGED_RATE, mask=slow)
        if held is not None and cv2.countNonZero(held):
            cv2.accumulateWeighted(blurred, self._bg, alpha, mask=held)

    def _update_noise(self, blurred: np.ndarray) -> None:
        diff = cv2.absdiff(blurred.astype(np.float32), self._bg)
        sigma = robust_sigma(diff, self._keep)
        if sigma is None:
            return
        if self.noise_sigma is None:
            self.noise_sigma = sigma
        else:
            self.noise_sigma += NOISE_RATE * (sigma - self.noise_sigma)
        self._set_threshold()

    def _changed(self, blurred: np.ndarray, gain: float) -> tuple[np.ndarray, int]:
        """Binary image of the pixels that differ from the (gain-scaled) background, and their count."""
        diff = cv2.absdiff(blurred, cv2.convertScaleAbs(self._bg, alpha=gain))
        _, changed = cv2.threshold(diff, self._thresh, 255, cv2.THRESH_BINARY)
        if self._keep is not None:
            changed = cv2.bitwise_and(changed, self._keep)
        return changed, cv2.countNonZero(changed)

    def _is_light(self, blurred: np.ndarray, changed: np.ndarray, grown: np.ndarray, contour,
                  rect: tuple[int, int, int, int], gain: float) -> tuple[np.ndarray, tuple[int, int]] | None:
        """When the change in the region is light on the scene (see edge_agent.motion.lighting): the
        region with its ring (uint8 255) and the (x, y) of that mask's box in the frame; else None."""
        rows, cols = changed.shape
        x, y, w, h = rect
        m = lighting.GROW + lighting.SOFT_RING + 1
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(cols, x + w + m), min(rows, y + h + m)
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(region, [contour], -1, 255, -1, offset=(-x0, -y0))
        noise = max(self.noise_sigma if self.noise_sigma is not None else 1.0, 0.5)
        if not lighting.is_light(blurred[y0:y1, x0:x1].astype(np.float32), self._bg[y0:y1, x0:x1] * gain,
                                 changed[y0:y1, x0:x1], grown[y0:y1, x0:x1], region, self._thresh, noise):
            return None
        return cv2.dilate(region, _RING_KERNEL), (x0, y0)

    def _boxes(self, changed: np.ndarray, rows: int, cols: int, blurred: np.ndarray,
               gain: float) -> list[tuple[float, float, float, float]]:
        cfg = self.cfg
        grown = cv2.dilate(changed, _DILATE_KERNEL, iterations=_DILATE_ITERATIONS)
        if self._keep is not None:
            grown = cv2.bitwise_and(grown, self._keep)
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = cfg.min_area * rows * cols
        boxes = []
        hit: set[str] = set()
        solid, self._solid = self._solid if self._active else [], []
        for c in contours:
            if cv2.contourArea(c) < min_px:
                continue
            x, y, w, h = cv2.boundingRect(c)
            if cfg.reject_lighting and not any(lighting.overlap((x, y, w, h), r) for r in solid):
                # a region that overlaps what was solid in the last frame of this event is the same
                # thing, moved: judged once, not every frame (the light test is most of the gate's cost)
                light = self._is_light(blurred, changed, grown, c, (x, y, w, h), gain)
                if light is not None:
                    self._lit.append(light)
                    continue
            self._solid.append((x, y, w, h))
            if self._zones:
                region = grown[y : y + h, x : x + w]
                touched = [
                    name
                    for name, zone in self._zones
                    if cv2.countNonZero(cv2.bitwise_and(region, zone[y : y + h, x : x + w]))
                ]
                if not touched:
                    continue
                hit.update(touched)
            boxes.append((x / cols, y / rows, w / cols, h / rows))
        self.zones_hit = sorted(hit)
        return boxes

    def _debounce(self, motion: bool, ts: float, boxes: list, fraction: float) -> MotionResult:
        started = ended = False
        if motion:
            self._streak += 1
            self._last_motion_ts = ts
            if not self._active and self._streak >= self.cfg.min_motion_frames:
                self._active = started = True
        else:
            self._streak = 0
            if (
                self._active
                and self._last_motion_ts is not None
                and ts - self._last_motion_ts >= self.cfg.off_delay_s
            ):
                self._active = False
                ended = True
        return MotionResult(
            active=self._active, started=started, ended=ended, boxes=boxes, changed_fraction=fraction
        )
