"""Face detection that works offline, and face crops with a margin.

Detectors:
- "cnn" (default): the shipped CenterFace model (models/face_detector, see its MODEL_CARD.md),
  decoded by edge_agent/enhance/face_cnn.py and run through the inference layer. With motion
  regions it searches each grown region at native resolution, upscaled by cfg.upscale when the
  motion box is short (a small person, so a 20-30 px face); at most cfg.max_regions regions and
  cfg.max_pixels net-input pixels per frame (docs/enhance.md has the cost). When its model file is
  missing, corrupt or unloadable the error (naming the file) is logged, `fallback_error` keeps it
  and the LBP cascade takes over (`kind` becomes "lbp"); the agent raises model_failed.
- "lbp": OpenCV's LBP frontal-face cascade as shipped inside the scikit-image wheel
  (skimage/data/lbpcascade_frontalface_opencv.xml; the OpenCV 5 wheels ship no cascade files), run
  with cv2.CascadeClassifier from the contrib wheel (about 10x faster than skimage.feature.Cascade
  on the same file). The copy in scikit-image misspells one tag ("featuhreParams"), which OpenCV's
  reader refuses, so the text is corrected in memory. The cascade gives no confidence, so every LBP
  box has score 1.0; the largest faces come first.
- "yunet": cv2.FaceDetectorYN with an ONNX file the operator supplies (cfg.yunet_model); real
  scores, best first.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.config.schema import FacesConfig
from edge_agent.inference.base import ModelError

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int, float]  # x, y, w, h, score

LBP_SCALE_FACTOR = 1.2
LBP_MIN_NEIGHBORS = 4
YUNET_SCORE_THRESHOLD = 0.6
YUNET_NMS_THRESHOLD = 0.3
REGION_GROW = 0.5  # detect(regions=...): search this fraction of each region's size around it
PERSON_ASPECT = 1.5  # a motion box this many times taller than wide is a person: search its head band
MIN_NET_SIDE = 32  # cnn: smallest net input side worth running (one padded block)


def lbp_cascade_path() -> Path:
    import skimage.data

    return Path(skimage.data.lbp_frontal_face_cascade_filename())


class FaceDetector:
    """detect(bgr, regions) -> [(x, y, w, h, score)]; `kind` is the detector actually used.

    models_dir: the models folder for detector "cnn" (default: default_models_dir()); net: an
    already loaded face_cnn.CenterFaceNet to share (the agent loads it once for every camera);
    load_error: the reason a shared load failed (skips a second attempt: LBP at once).
    """

    def __init__(self, cfg: FacesConfig, models_dir: Path | None = None, *, net: Any = None,
                 load_error: str | None = None, backend: str = "onnxruntime", threads: int = 0) -> None:
        self.cfg = cfg
        self.kind = cfg.detector
        self.fallback_error: str | None = None
        self.net = None
        self._lock = threading.Lock()  # cv2.FaceDetectorYN keeps per-call state (input size)
        if cfg.detector == "cnn":
            self.net = net if net is not None else self._load_cnn(models_dir, load_error, backend, threads)
            if self.net is None:
                self.kind = "lbp"
        if self.kind == "yunet":
            self._yunet = self._load_yunet(cfg.yunet_model)
        elif self.kind == "lbp":
            self._cascade = _load_lbp_cascade(lbp_cascade_path())

    def _load_cnn(self, models_dir: Path | None, load_error: str | None, backend: str, threads: int):
        from edge_agent.enhance.face_cnn import load_face_net
        from edge_agent.inference.loader import default_models_dir

        if load_error is None:
            try:
                return load_face_net(models_dir or default_models_dir(), backend=backend, threads=threads)
            except ModelError as exc:
                load_error = str(exc)
        self.fallback_error = load_error
        log.error("CNN face detector unavailable, the LBP cascade takes over: %s", load_error)
        return None

    @staticmethod
    def _load_yunet(path: Path | None):
        if path is None:
            raise ModelError("face detector 'yunet' needs yunet_model (path to the ONNX file)")
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"YuNet model file {path} is missing")
        try:
            return cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), YUNET_SCORE_THRESHOLD, YUNET_NMS_THRESHOLD, 5000
            )
        except cv2.error as exc:
            raise ModelError(f"YuNet model file {path} cannot be loaded by OpenCV: {exc}") from exc

    def detect(self, bgr: np.ndarray, regions: list[tuple[float, float, float, float]] | None = None) -> list[Box]:
        """Faces in a BGR uint8 frame: (x, y, w, h, score), at most max_faces, sides >= min_size.

        regions: optional normalized (x, y, w, h) boxes (e.g. the motion boxes); each is grown by
        REGION_GROW of its size on every side, overlapping ones are merged, and only those parts
        of the frame are searched, which is much cheaper than the whole frame. None or an empty
        list searches the whole frame.
        """
        if bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {bgr.shape}")
        if self.cfg.max_faces == 0:
            return []
        if self.kind == "cnn":
            boxes = self._detect_cnn(bgr, regions)
        else:
            find = self._detect_yunet if self.kind == "yunet" else self._detect_lbp
            if not regions:
                boxes = find(bgr)
            else:
                boxes = []
                for x0, y0, x1, y1 in search_rects(regions, bgr.shape[1], bgr.shape[0], self.cfg.min_size,
                                                       self.cfg.head_band):
                    part = np.ascontiguousarray(bgr[y0:y1, x0:x1])
                    boxes += [(x + x0, y + y0, w, h, sc) for x, y, w, h, sc in find(part)]
        m = self.cfg.min_size
        boxes = [b for b in boxes if b[2] >= m and b[3] >= m]
        boxes.sort(key=lambda b: (b[4], b[2] * b[3]), reverse=True)
        return boxes[: self.cfg.max_faces]

    def plan(self, width: int, height: int, regions: list | None) -> list[tuple[int, int, int, int, float]]:
        """cnn: the (x0, y0, x1, y1, scale) rectangles one frame is searched in, within the budget."""
        return plan_search(self.cfg, width, height, regions)

    def _detect_cnn(self, bgr: np.ndarray, regions: list | None) -> list[Box]:
        from edge_agent.enhance.face_cnn import nms

        H, W = bgr.shape[:2]
        found = []
        for x0, y0, x1, y1, scale in self.plan(W, H, regions):
            part = bgr[y0:y1, x0:x1]
            b = self.net.detect(part, self.cfg.score_threshold, scale)
            if len(b):
                b[:, [0, 2]] += x0
                b[:, [1, 3]] += y0
                found.append(b)
        if not found:
            return []
        b = np.vstack(found)
        b = b[nms(b[:, :4], b[:, 4], self.net.dec.nms_iou)]  # regions that overlapped after growth
        out = []
        for x1, y1, x2, y2, sc in b.tolist():
            x, y = int(round(x1)), int(round(y1))
            w, h = int(round(x2)) - x, int(round(y2)) - y
            if w > 0 and h > 0:
                out.append((x, y, w, h, float(sc)))
        return out

    def _detect_lbp(self, bgr: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        min_side = max(self.cfg.min_size, 24)  # the cascade window is 24x24
        if min(h, w) < min_side:
            return []
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=LBP_SCALE_FACTOR, minNeighbors=LBP_MIN_NEIGHBORS, minSize=(min_side, min_side)
        )
        return [(int(x), int(y), int(bw), int(bh), 1.0) for x, y, bw, bh in found]

    def _detect_yunet(self, bgr: np.ndarray) -> list[Box]:
        h, w = bgr.shape[:2]
        with self._lock:
            self._yunet.setInputSize((w, h))
            _, faces = self._yunet.detect(bgr)
        if faces is None:
            return []
        out: list[Box] = []
        for f in faces:
            x, y, bw, bh = (int(round(v)) for v in f[:4])
            x, y = max(x, 0), max(y, 0)
            bw, bh = min(bw, w - x), min(bh, h - y)
            if bw > 0 and bh > 0:
                out.append((x, y, bw, bh, float(f[14])))
        return out


def _load_lbp_cascade(path: Path):
    if not path.is_file():
        raise ModelError(f"face cascade {path} is missing (scikit-image installation incomplete?)")
    if not hasattr(cv2, "CascadeClassifier"):
        raise ModelError("cv2.CascadeClassifier is missing: install opencv-contrib-python-headless")
    text = path.read_text(encoding="utf-8").replace("featuhreParams", "featureParams")
    storage = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    cascade = cv2.CascadeClassifier()
    if not cascade.read(storage.getFirstTopLevelNode()) or cascade.empty():
        raise ModelError(f"face cascade {path} cannot be read by OpenCV")
    return cascade


def head_band(region: tuple[float, float, float, float], width: int, height: int,
              band: float) -> tuple[tuple[float, float, float, float], float]:
    """(normalized box to search, growth fraction) for one motion box.

    A person-shaped box (at least PERSON_ASPECT times taller than wide in pixels) holds its face in
    its upper part: only the top `band` of it is searched, a little wider than the body and reaching
    a little above it (a head the gate cut off). Any other box is searched whole, grown by REGION_GROW.
    """
    nx, ny, nw, nh = region
    if band >= 1.0 or nh * height < PERSON_ASPECT * nw * width:
        return region, REGION_GROW
    return (nx - 0.25 * nw, ny - 0.1 * nh, 1.5 * nw, (band + 0.1) * nh), 0.0


def search_rects(
    regions: list[tuple[float, float, float, float]], width: int, height: int, min_size: int,
    band: float = 1.0,
) -> list[tuple[int, int, int, int]]:
    """Grow normalized boxes (head_band), convert to pixel (x0, y0, x1, y1), merge overlapping ones."""
    rects = []
    for region in regions:
        (nx, ny, nw, nh), grow = head_band(region, width, height, band)
        gx, gy = nw * grow, nh * grow
        x0, y0 = int((nx - gx) * width), int((ny - gy) * height)
        x1, y1 = int(np.ceil((nx + nw + gx) * width)), int(np.ceil((ny + nh + gy) * height))
        # at least one face window of min_size around the region's centre
        cx, cy, half = (x0 + x1) // 2, (y0 + y1) // 2, min_size
        x0, y0, x1, y1 = min(x0, cx - half), min(y0, cy - half), max(x1, cx + half), max(y1, cy + half)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    rects[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return rects


def plan_search(cfg: FacesConfig, width: int, height: int,
                regions: list | None) -> list[tuple[int, int, int, int, float]]:
    """(x0, y0, x1, y1, scale) rectangles for the cnn detector, at most cfg.max_pixels in all.

    No regions: the whole frame, downscaled if it is over the budget. With regions: the grown,
    merged rectangles, largest first, at most cfg.max_regions; a rectangle whose motion box is
    shorter than cfg.upscale_below_px is upscaled by cfg.upscale. When the budget runs short the
    upscaling goes first, then the rectangle is downscaled to what is left (or skipped).
    """
    if not regions:
        s = min(1.0, (cfg.max_pixels / float(width * height)) ** 0.5)
        return [(0, 0, width, height, s)]
    small = {}
    for region in regions:  # which grown rectangles come from a short (far) motion box
        (nx, ny, nw, nh), _grow = head_band(region, width, height, cfg.head_band)
        cx, cy = (nx + nw / 2) * width, (ny + nh / 2) * height
        small[(cx, cy)] = region[3] * height < cfg.upscale_below_px
    rects = search_rects(regions, width, height, cfg.min_size, cfg.head_band)
    rects.sort(key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)
    out, left = [], float(cfg.max_pixels)
    for x0, y0, x1, y1 in rects[: cfg.max_regions]:
        area = float((x1 - x0) * (y1 - y0))
        inside = [v for (cx, cy), v in small.items() if x0 <= cx <= x1 and y0 <= cy <= y1]
        s = cfg.upscale if inside and all(inside) else 1.0
        if area * s * s > left:
            s = (left / area) ** 0.5
        if min(x1 - x0, y1 - y0) * s < MIN_NET_SIDE / 2:
            continue
        out.append((x0, y0, x1, y1, s))
        left -= area * s * s
    return out


MERGE_IOU = 0.4  # detect_on "both": boxes overlapping this much are one face


def merge_found(found: dict[str, list]) -> list[tuple[tuple, str]]:
    """{frame name: boxes} -> [(box, frame name)], one per face: overlapping boxes (IoU >=
    MERGE_IOU) from different frames are merged into the higher-scoring one, best first."""
    from edge_agent.enhance.face_cnn import box_iou

    items = sorted(((tuple(b), name) for name, boxes in found.items() for b in boxes),
                   key=lambda it: -float(it[0][4]) if len(it[0]) > 4 else 0.0)
    kept: list[tuple[tuple, str]] = []
    for box, name in items:
        if all(box_iou(box, k[0]) < MERGE_IOU for k in kept):
            kept.append((box, name))
    return kept


def detect_faces(detector: Any, cfg: FacesConfig, original: np.ndarray, enhanced: np.ndarray | None,
                 regions: list | None = None) -> list[tuple[tuple, str]]:
    """The agent's face search on one frame: [(box, "original"|"enhanced")], best first.

    cfg.detect_on picks the frame(s) when a low-light-enhanced one exists (else the original is
    searched); with "both" the boxes of the two are merged (merge_found). Used by the worker and
    by `edge-agent enhance --faces`, so both apply the same detection.
    """
    frames = {"original": original}
    if enhanced is not None and cfg.detect_on == "enhanced":
        frames = {"enhanced": enhanced}
    elif enhanced is not None and cfg.detect_on == "both":
        frames = {"original": original, "enhanced": enhanced}
    found = merge_found({name: list(detector.detect(img, regions)) for name, img in frames.items()})
    return found[: cfg.max_faces]


MID_GRAY = 0.45  # brighten_to_mid: the mean a dark crop is lifted to


def brighten_to_mid(img: np.ndarray) -> np.ndarray:
    """A dark uint8 picture (or a float one on the 0..255 scale, rounded after the lift) lifted by
    one gamma curve so its mean reaches MID_GRAY (brighter ones unchanged). What an operator does by hand; on the night benchmark a face cut from the dark
    original and lifted so is identified more often than one cut from the low-light-enhanced frame."""
    g = lift_gamma(img)
    if img.dtype != np.uint8:  # a fused crop (float 0..255): lifted before it is rounded to 8 bits
        lifted = np.clip(img, 0.0, 255.0) * np.float32(1.0 / 255.0)
        if g is not None:
            lifted = np.power(lifted, np.float32(g))
        return (lifted * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    if g is None:
        return img.copy()
    lut = (np.clip((np.arange(256, dtype=np.float32) / 255.0) ** g, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return cv2.LUT(img, lut)


def lift_gamma(img: np.ndarray) -> float | None:
    """The exponent brighten_to_mid applies to a uint8 picture (out = in ** g on 0..1), or None when
    its mean is already at MID_GRAY or above. The SR training uses it to lift its targets alike."""
    mean = float(img.mean()) / 255.0 if img.size else MID_GRAY
    if mean >= MID_GRAY:
        return None
    return float(np.log(MID_GRAY) / np.log(min(max(mean, 1e-3), 0.99)))


def crop_with_margin(
    bgr: np.ndarray, box: tuple[int, int, int, int] | tuple[int, int, int, int, float], margin: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Cut box (x, y, w, h) grown by margin * side on every side, clipped to the frame.

    Returns (crop, (x, y, w, h) of the crop in frame pixels); the crop is a copy.
    """
    x, y, w, h = (int(v) for v in box[:4])
    H, W = bgr.shape[:2]
    mx, my = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(x - mx, 0), max(y - my, 0)
    x1, y1 = min(x + w + mx, W), min(y + h + my, H)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box[:4]} lies outside the {W}x{H} frame")
    return bgr[y0:y1, x0:x1].copy(), (x0, y0, x1 - x0, y1 - y0)
