"""Face detection that works offline, and face crops with a margin.

Detectors:
- "lbp" (default): OpenCV's LBP frontal-face cascade as shipped inside the scikit-image wheel
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


def lbp_cascade_path() -> Path:
    import skimage.data

    return Path(skimage.data.lbp_frontal_face_cascade_filename())


class FaceDetector:
    def __init__(self, cfg: FacesConfig) -> None:
        self.cfg = cfg
        self.kind = cfg.detector
        self._lock = threading.Lock()  # cv2.FaceDetectorYN keeps per-call state (input size)
        if cfg.detector == "yunet":
            self._yunet = self._load_yunet(cfg.yunet_model)
        else:
            self._cascade = _load_lbp_cascade(lbp_cascade_path())

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
        find = self._detect_yunet if self.kind == "yunet" else self._detect_lbp
        if not regions:
            boxes = find(bgr)
        else:
            boxes = []
            for x0, y0, x1, y1 in _search_rects(regions, bgr.shape[1], bgr.shape[0], self.cfg.min_size):
                part = np.ascontiguousarray(bgr[y0:y1, x0:x1])
                boxes += [(x + x0, y + y0, w, h, sc) for x, y, w, h, sc in find(part)]
        m = self.cfg.min_size
        boxes = [b for b in boxes if b[2] >= m and b[3] >= m]
        boxes.sort(key=lambda b: (b[4], b[2] * b[3]), reverse=True)
        return boxes[: self.cfg.max_faces]

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


def _search_rects(
    regions: list[tuple[float, float, float, float]], width: int, height: int, min_size: int
) -> list[tuple[int, int, int, int]]:
    """Grow normalized boxes, convert to pixel (x0, y0, x1, y1), merge overlapping ones."""
    rects = []
    for nx, ny, nw, nh in regions:
        gx, gy = nw * REGION_GROW, nh * REGION_GROW
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
