"""Multi-frame fusion of night face crops: the face found in the job's frame is located again in the
camera's previous frames and the aligned crops are averaged.

A face cut from a dark frame carries the sensor's noise, which the agent's lift to mid-grey
amplifies; a single frame's denoiser trades that noise against detail. The noise is fresh in every
frame while the face is not, so averaging K aligned crops cuts the noise by about sqrt(K) without
smoothing the face: the registered frame averaging of forensic video work. On the night-yield clips
(benchmarks/night_yield.py) three frames lifted the identification of 24-40 px faces most.

The camera loop keeps, for each of its last frames where something moved, copies of the parts the
face detector would search (RecentRegion, built by recent_regions: the head bands of the moving
people). Alignment is translation only: the face box of the job's
frame, as a blurred grey template, is searched by normalised cross-correlation (OpenCV
matchTemplate) in each earlier region, in a window that grows with the time between the frames. A
region that is too old, where the best match scores below min_match, or where the matched crop
would leave the region, is not used: the crop then averages fewer frames (one: the job's own).
"""

from __future__ import annotations

import mmap

import cv2
import numpy as np

from edge_agent.config.enhance_schema import FacesConfig
from edge_agent.enhance.faces import search_rects
from edge_agent.records import RecentRegion

# how far a face may travel between frames, in face widths per second (horizontal, vertical):
# walking people on the night-yield clips move 0.85 widths per frame at 10 fps (90th percentile)
TRAVEL_PER_S = (12.0, 3.0)
REGION_GROW = 0.15  # each remembered rectangle grows by this share of its size per side


def off_heap_copy(a: np.ndarray) -> np.ndarray:
    """A copy of a in its own anonymous memory map, given back to the system the moment the copy is
    dropped. A region lives a fraction of a second; copied into malloc's heaps, between the frames of
    eight cameras, its freed pages fragmented them (the agent's peak RSS grew ~30 MB at 8 x 1080p)."""
    out = np.frombuffer(mmap.mmap(-1, max(a.nbytes, 1)), dtype=a.dtype, count=a.size).reshape(a.shape)
    out[...] = a
    return out


def recent_regions(image: np.ndarray, boxes, ts: float, cfg: FacesConfig) -> tuple[RecentRegion, ...]:
    """Copies of the parts of a BGR frame where the face detector would search it: the rectangles
    plan_search grows from the motion boxes (normalised x, y, w, h; head bands of person-shaped
    ones), largest first, at most cfg.max_regions, each grown by REGION_GROW so that a face near
    their edge keeps its crop margin. Empty when nothing moved."""
    if not boxes:
        return ()
    H, W = image.shape[:2]
    rects = search_rects(list(boxes), W, H, cfg.min_size, cfg.head_band)
    rects.sort(key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)
    out = []
    for x0, y0, x1, y1 in rects[: cfg.max_regions]:
        gx, gy = int((x1 - x0) * REGION_GROW), int((y1 - y0) * REGION_GROW)
        X0, Y0, X1, Y1 = max(x0 - gx, 0), max(y0 - gy, 0), min(x1 + gx, W), min(y1 + gy, H)
        out.append(RecentRegion(ts=ts, x=X0, y=Y0, image=off_heap_copy(image[Y0:Y1, X0:X1])))
    return tuple(out)


def _grey(bgr: np.ndarray) -> np.ndarray:
    """Blurred float grey: the matching signal (the blur keeps single noisy pixels from deciding)."""
    return cv2.GaussianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 1.0)


def _locate(region: RecentRegion, template: np.ndarray, face: tuple[int, int, int, int], dt: float,
            min_match: float) -> tuple[int, int] | None:
    """The face's (dx, dy) displacement from the job's frame to this earlier region, or None."""
    fx, fy, fw, fh = face
    sx = int(fw * TRAVEL_PER_S[0] * dt) + 4
    sy = int(fh * TRAVEL_PER_S[1] * dt) + 4
    rh, rw = region.image.shape[:2]
    # the search window in region coordinates
    X0, Y0 = max(fx - sx - region.x, 0), max(fy - sy - region.y, 0)
    X1, Y1 = min(fx + fw + sx - region.x, rw), min(fy + fh + sy - region.y, rh)
    if X1 - X0 < fw or Y1 - Y0 < fh:
        return None
    score = cv2.matchTemplate(_grey(region.image[Y0:Y1, X0:X1]), template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (mx, my) = cv2.minMaxLoc(score)
    if not np.isfinite(best) or best < min_match:
        return None
    return region.x + X0 + mx - fx, region.y + Y0 + my - fy


def fuse_crop(frame: np.ndarray, crop_box: tuple[int, int, int, int], face_box: tuple[int, int, int, int],
              ts: float, recent, *, max_frames: int, max_gap_s: float, min_match: float) -> tuple[np.ndarray, int]:
    """The crop_box (x, y, w, h) of the BGR frame averaged with the same face in up to max_frames - 1
    earlier regions (newest first, at most max_gap_s older than ts); face_box is the detected face
    inside crop_box, in frame pixels. Returns (float32 BGR crop, number of frames averaged)."""
    x, y, w, h = crop_box
    crop = frame[y : y + h, x : x + w].astype(np.float32)
    fx, fy, fw, fh = (int(v) for v in face_box[:4])
    fx, fy = max(fx, 0), max(fy, 0)
    fw, fh = min(fw, frame.shape[1] - fx), min(fh, frame.shape[0] - fy)
    if max_frames <= 1 or fw < 8 or fh < 8:
        return crop, 1
    template = _grey(np.ascontiguousarray(frame[fy : fy + fh, fx : fx + fw]))
    total, used, done = crop.copy(), 1, set()
    for region in sorted(recent, key=lambda r: r.ts, reverse=True):
        dt = ts - region.ts
        if used >= max_frames:
            break
        if region.ts in done or not 0 < dt <= max_gap_s:
            continue
        shift = _locate(region, template, (fx, fy, fw, fh), dt, min_match)
        if shift is None:
            continue
        # the crop box moved by the face's displacement, in region coordinates
        cx, cy = x + shift[0] - region.x, y + shift[1] - region.y
        rh, rw = region.image.shape[:2]
        if cx < 0 or cy < 0 or cx + w > rw or cy + h > rh:
            continue
        total += region.image[cy : cy + h, cx : cx + w]
        used += 1
        done.add(region.ts)  # one crop per earlier frame, from the first of its regions that holds it
    return total / np.float32(used), used
