"""Pre- and post-processing shared by the agent and export_tools (numpy only, written once).

Every shipped model takes NCHW float32 RGB in [0, 1] and returns the same layout and range.
Images in the agent are BGR uint8 HxWx3 (OpenCV order).
"""

from __future__ import annotations

import cv2
import numpy as np

_INV255 = np.float32(1.0 / 255.0)


def bgr_to_nchw(image: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 1x3xHxW RGB in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    out = np.empty((1, 3, image.shape[0], image.shape[1]), np.float32)
    # one pass: channel flip + HWC->CHW as a strided view, scaled straight into the output
    np.multiply(image.transpose(2, 0, 1)[::-1], _INV255, out=out[0], casting="unsafe")
    return out


def nchw_to_bgr(tensor: np.ndarray) -> np.ndarray:
    """float32 1x3xHxW RGB in [0, 1] -> BGR uint8 HxWx3 (clipped, rounded)."""
    if tensor.ndim != 4 or tensor.shape[0] != 1 or tensor.shape[1] != 3:
        raise ValueError(f"expected a 1x3xHxW tensor, got shape {tensor.shape}")
    planes = np.clip(tensor[0, ::-1], 0.0, 1.0)  # B, G, R planes, clipped (a new array)
    # convertScaleAbs rounds and saturates to uint8; inputs are already >= 0 so abs() is a no-op
    return cv2.merge([cv2.convertScaleAbs(p, alpha=255.0) for p in planes])


def pad_to_multiple(tensor: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an NCHW tensor at bottom/right so H and W are multiples; returns (padded, (h, w))."""
    h, w = tensor.shape[-2:]
    if multiple <= 1:
        return tensor, (h, w)
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return tensor, (h, w)
    mode = "reflect" if (ph < h and pw < w) else "edge"
    padded = np.pad(tensor, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    return padded, (h, w)


def crop_to(tensor: np.ndarray, size: tuple[int, int], scale: int = 1) -> np.ndarray:
    """Undo pad_to_multiple on an output that is `scale` times the padded input."""
    h, w = size
    return tensor[..., : h * scale, : w * scale]


def luma(image: np.ndarray) -> float:
    """Mean BT.601 luma (0..255) of a BGR uint8 image, from a cheap subsample."""
    sub = image[::4, ::4].astype(np.float32)
    return float((0.114 * sub[..., 0] + 0.587 * sub[..., 1] + 0.299 * sub[..., 2]).mean())


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1], channels last -> BT.601 Y in [16, 235] / 255 scale as used by SR papers."""
    return (16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
