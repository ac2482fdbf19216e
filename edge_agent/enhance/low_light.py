"""Low-light enhancement stage: pre/post-processing around the KinD-style model.

The model's I/O comes from its manifest entry: the image is the first 4-D input, the brightness
ratio the 2-D ([1, 1]) input (optional; a model without one ignores `ratio`), the result the first
output. Inputs are padded to the entry's pad_multiple and the output is cropped back, so any frame
size works. Around the model:
- ratio "auto" (the default): the ratio that brings the enhanced frame to a mean luma of
  TARGET_LUMA. A first guess comes from the frame's measured exposure (TARGET_LUMA / mean luma,
  auto_ratio); the model then enhances a small copy of the frame (PROBE_PIXELS, about 1/16 of a
  720p frame's cost) at that guess, and the guess is scaled by how far the probe's brightness
  missed (follow_ratio); while a probe misses TARGET_LUMA by more than PROBE_TOLERANCE, the next
  guess comes from the probes so far (next_ratio: a secant in log-log, kept inside the bracket once
  probes lie on both sides of the target, a bisection where the brightness is flat), up to
  PROBE_RUNS runs: the model's response to the ratio is not linear, saturates (KinD's illumination),
  differs between models and depends on the scene (a lamp, a sky), which the exposure alone cannot
  tell. Within RATIO_RANGE; a number overrides it;
- a frame larger than model_pixels (when given: the agent's default is 1280x720's 921,600) is
  enhanced at that size, aspect kept, and scaled back (fit_pixels): a 1080p frame costs a quarter of
  full resolution (the enhanced frame is the operator's overview; face crops and their SR are cut
  from the full-resolution original);
- a frame larger than max_pixels (1080p, 4 MP) is enhanced in overlapping tiles (tile_grid), blended
  with linear ramps across each overlap so no seam shows: the model's memory stays that of one tile;
- a gray frame (IR night mode: colour saturation <= gray_saturation, the camera health monitor's
  own test) gives a gray frame out: the model invents no colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from edge_agent.config.schema import RATIO_RANGE
from edge_agent.enhance import tensors
from edge_agent.health.conditions import saturation
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import LoadedModel

TARGET_LUMA = 110.0  # auto ratio: the mean luma (0..255) a well-exposed frame has
PROBE_PIXELS = 320 * 180  # the auto ratio's probe run: the frame shrunk to at most this many pixels
PROBE_RUNS = 4  # probe runs the auto ratio makes at most
PROBE_TOLERANCE = 0.05  # a probe within 5 % of TARGET_LUMA ends the search
TILE_OVERLAP = 32  # pixels each tile reaches into its neighbour (the blend band is twice this)
MAX_TILES_PER_SIDE = 16


def is_dark(bgr: np.ndarray, luma_threshold: float) -> bool:
    """True when the mean luma (0..255) of the frame is below the threshold."""
    return tensors.luma(bgr) < luma_threshold


def auto_ratio(bgr: np.ndarray) -> float:
    """The brightness ratio for a frame from its measured exposure: TARGET_LUMA / mean luma, clamped."""
    lo, hi = RATIO_RANGE
    return float(min(hi, max(lo, TARGET_LUMA / max(tensors.luma(bgr), 1.0))))


def follow_ratio(guess: float, probe_luma: float) -> float:
    """The auto ratio after a probe run at `guess` came out at mean luma `probe_luma`: the guess
    scaled so the enhanced frame lands on TARGET_LUMA (one step: brightness is close to linear in
    the ratio over such a correction), clamped."""
    lo, hi = RATIO_RANGE
    return float(min(hi, max(lo, guess * TARGET_LUMA / max(probe_luma, 1.0))))


def _slope(a: tuple[float, float], b: tuple[float, float]) -> float | None:
    """The log-log slope of brightness over ratio between two probe runs (ratio, mean luma); None
    where they tell no usable slope (same ratio, lumas under 1, brightness flat or falling)."""
    (r0, l0), (r1, l1) = a, b
    if r0 == r1 or min(l0, l1) < 1.0:  # ratios are >= 1 (RATIO_RANGE); lumas under 1 tell nothing
        return None
    slope = math.log(l1 / l0) / math.log(r1 / r0)
    return slope if slope >= 0.1 else None


def secant_ratio(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The next auto ratio from two probe runs (ratio, mean luma): the model's brightness taken as a
    power of the ratio between them (a line in log-log), solved for TARGET_LUMA, clamped. Where the
    two runs tell no usable slope (_slope) it is follow_ratio of b."""
    slope = _slope(a, b)
    if slope is None:
        return follow_ratio(*b)
    lo, hi = RATIO_RANGE
    return float(min(hi, max(lo, b[0] * (TARGET_LUMA / b[1]) ** (1.0 / slope))))


def next_ratio(runs: list[tuple[float, float]]) -> float:
    """The next auto ratio from the probe runs so far (ratio, mean luma), in order. A model's
    brightness rises with the ratio but flattens where its illumination saturates (KinD: past a
    ratio of 10-20 the output is the reflectance itself), so:
    - runs on both sides of TARGET_LUMA bracket it: the secant (log-log) between the closest run
      below and the closest above, kept inside the bracket (its geometric middle where the secant
      lands in the outer tenth at either end);
    - runs on one side only: the proportional step after one run (follow_ratio), the secant of the
      last two after more, but never past the geometric middle between the last ratio and the end
      of RATIO_RANGE that lies towards the target (that middle itself where the two runs show no
      slope: flat, saturated)."""
    lo_end, hi_end = RATIO_RANGE
    below = [p for p in runs if p[1] < TARGET_LUMA]
    above = [p for p in runs if p[1] >= TARGET_LUMA]
    if below and above:
        a, b = max(below), min(above)
        if a[0] < b[0]:
            guess = secant_ratio(a, b)
            t = math.log(guess / a[0]) / math.log(b[0] / a[0])
            return guess if 0.1 <= t <= 0.9 else math.sqrt(a[0] * b[0])
    if len(runs) == 1:
        return follow_ratio(*runs[-1])
    r1, l1 = runs[-1]
    middle = math.sqrt(r1 * (lo_end if l1 >= TARGET_LUMA else hi_end))
    if _slope(runs[-2], runs[-1]) is None:
        return middle
    # a small slope from two runs near saturation throws the secant far: at most to the middle
    guess = secant_ratio(runs[-2], runs[-1])
    return max(guess, middle) if l1 >= TARGET_LUMA else min(guess, middle)


def fit_pixels(bgr: np.ndarray, max_pixels: int) -> np.ndarray:
    """The frame itself when it has at most max_pixels, else a copy shrunk (aspect kept) to fit."""
    h, w = bgr.shape[:2]
    if h * w <= max_pixels:
        return bgr
    f = math.sqrt(max_pixels / (h * w))
    size = (max(1, math.floor(w * f)), max(1, math.floor(h * f)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def tile_grid(height: int, width: int, max_pixels: int, overlap: int = TILE_OVERLAP
              ) -> list[tuple[int, int, int, int]]:
    """Tiles (y0, y1, x0, x1) covering the frame, each at most max_pixels (overlap included), as
    few as possible (then the squarest). One tile when the frame fits."""
    if height * width <= max_pixels:
        return [(0, height, 0, width)]
    best = None
    for ny in range(1, MAX_TILES_PER_SIDE + 1):
        for nx in range(1, MAX_TILES_PER_SIDE + 1):
            th = math.ceil(height / ny) + (2 * overlap if ny > 1 else 0)
            tw = math.ceil(width / nx) + (2 * overlap if nx > 1 else 0)
            if th * tw <= max_pixels:
                key = (nx * ny, abs(math.log(tw / th)))
                if best is None or key < best[0]:
                    best = (key, ny, nx)
    if best is None:
        raise ValueError(f"a {width}x{height} frame does not fit in {MAX_TILES_PER_SIDE}x{MAX_TILES_PER_SIDE} "
                         f"tiles of {max_pixels} pixels")
    _, ny, nx = best
    ys = np.linspace(0, height, ny + 1).round().astype(int)
    xs = np.linspace(0, width, nx + 1).round().astype(int)
    return [(max(0, int(ys[i]) - overlap), min(height, int(ys[i + 1]) + overlap),
             max(0, int(xs[j]) - overlap), min(width, int(xs[j + 1]) + overlap))
            for i in range(ny) for j in range(nx)]


def _ramp(n: int, lo_open: bool, hi_open: bool, overlap: int) -> np.ndarray:
    """Blend weights along one side of a tile: rising over 2*overlap where a neighbour overlaps."""
    w = np.ones(n, np.float32)
    band = 2 * overlap
    pos = np.arange(n, dtype=np.float32) + 0.5
    if lo_open:
        w = np.minimum(w, pos / band)
    if hi_open:
        w = np.minimum(w, (n - pos) / band)
    return np.clip(w, 1e-3, 1.0)


def _axis_weights(spans: list[tuple[int, int]], n: int) -> dict[tuple[int, int], np.ndarray]:
    """Each span's ramp divided by the sum of all ramps at each position (they sum to 1)."""
    ramps = {(a, b): _ramp(b - a, a > 0, b < n, TILE_OVERLAP) for a, b in spans}
    total = np.zeros(n, np.float32)
    for (a, b), r in ramps.items():
        total[a:b] += r
    return {(a, b): r / total[a:b] for (a, b), r in ramps.items()}


def blend_tiles(bgr: np.ndarray, tiles: list[tuple[int, int, int, int]],
                run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The frame enhanced tile by tile (run: BGR uint8 tile -> BGR uint8 of the same size), the
    tiles (a tile_grid: rows x columns) averaged with linear ramps across each overlap.

    Light on memory: the weights are separable (a row ramp times a column ramp, each normalised
    along its own axis), so no weight map is kept, and the sum is kept in 8.8 fixed point (uint16,
    half a float32 sum; each term is rounded to 1/256 of a level)."""
    h, w = bgr.shape[:2]
    rows = _axis_weights(sorted({(y0, y1) for y0, y1, _, _ in tiles}), h)
    cols = _axis_weights(sorted({(x0, x1) for _, _, x0, x1 in tiles}), w)
    acc = np.zeros((h, w, 3), np.uint16)
    for y0, y1, x0, x1 in tiles:
        part = run(np.ascontiguousarray(bgr[y0:y1, x0:x1])).astype(np.float32)
        part *= (256.0 * rows[(y0, y1)])[:, None, None]
        part *= cols[(x0, x1)][None, :, None]
        part += 0.5
        acc[y0:y1, x0:x1] += part.astype(np.uint16)  # at most 255 * 256 + a few: no overflow
    acc += 128
    acc >>= 8
    return acc.astype(np.uint8)


class LowLightEnhancer:
    def __init__(self, model: LoadedModel) -> None:
        entry = model.entry
        self.model = model
        images = [s for s in entry.inputs if len(s.shape) == 4]
        # the brightness ratio: the 2-D ([1, 1]) input, else any other non-image input
        others = [s for s in entry.inputs if len(s.shape) != 4]
        ratios = [s for s in others if len(s.shape) == 2] or others
        if not images or not entry.outputs:
            raise ModelError(
                f"model {model.info.name} ({model.path}) has no 4-D image input or no output in its manifest entry"
            )
        self.image_input = images[0].name
        self.ratio_input = ratios[0].name if ratios else None
        self.ratio_shape = tuple(d if isinstance(d, int) else 1 for d in ratios[0].shape) if ratios else ()
        self.output = entry.outputs[0].name
        self.pad_multiple = entry.pad_multiple

    def enhance(self, bgr: np.ndarray, ratio: float | str = "auto", *, max_pixels: int | None = None,
                model_pixels: int | None = None, gray_saturation: float | None = None) -> np.ndarray:
        """Brighten a BGR uint8 HxWx3 frame; returns BGR uint8 of the same size (see the module doc)."""
        h, w = bgr.shape[:2]
        small = fit_pixels(bgr, model_pixels) if model_pixels else bgr
        r = self.resolve_ratio(small, ratio)
        sh, sw = small.shape[:2]
        tiles = tile_grid(sh, sw, max_pixels) if max_pixels else [(0, sh, 0, sw)]
        out = self._run(small, r) if len(tiles) == 1 else blend_tiles(small, tiles, lambda t: self._run(t, r))
        if small is not bgr:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        if gray_saturation is not None and saturation(bgr) <= gray_saturation:
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return out

    def resolve_ratio(self, bgr: np.ndarray, ratio: float | str) -> float:
        """The ratio given to the model: a number is used as it is; "auto" is found from the frame's
        exposure and up to PROBE_RUNS probe runs on a small copy of it (see the module doc)."""
        if ratio != "auto":
            return float(ratio)
        r = auto_ratio(bgr)
        if self.ratio_input is None:
            return r
        small = fit_pixels(bgr, PROBE_PIXELS)
        runs: list[tuple[float, float]] = []
        for _ in range(PROBE_RUNS):
            runs.append((r, tensors.luma(self._run(small, r))))
            if abs(runs[-1][1] / TARGET_LUMA - 1.0) <= PROBE_TOLERANCE:
                return r
            nxt = next_ratio(runs)
            if nxt == r:  # at the end of the ratio's range
                return r
            r = nxt
        return r

    def _run(self, bgr: np.ndarray, ratio: float) -> np.ndarray:
        x, size = tensors.pad_to_multiple(tensors.bgr_to_nchw(bgr), self.pad_multiple)
        feeds = {self.image_input: x}
        if self.ratio_input is not None:
            feeds[self.ratio_input] = np.full(self.ratio_shape, ratio, dtype=np.float32)
        y = self.model.runner.run(feeds)[self.output]
        if y.shape[-2:] != x.shape[-2:]:
            raise ModelError(
                f"model {self.model.info.name} ({self.model.path}) returned {tuple(y.shape)} "
                f"for an input of {tuple(x.shape)}"
            )
        return tensors.nchw_to_bgr(tensors.crop_to(y, size))
