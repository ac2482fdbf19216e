"""The numbers the health monitor looks at, computed cheaply from one frame.

Everything here works on the motion gate's small gray frame (~180 rows) or on a strided view of
the colour frame (~36 rows), so one frame costs a few numpy/OpenCV reductions (well under 1 ms).

- contrast: gray std of a quarter-size copy (sensor noise averages out at that scale); a covered
  or sprayed lens collapses it.
- sharpness: variance of the Laplacian of the small frame; defocus lowers it against the learned
  baseline while contrast stays.
- signature: a quarter-size, band-passed, zero-mean unit-variance copy; its correlation with a
  reference (scene_match) is insensitive to lighting gain and to small moving objects, and drops
  when the camera is re-aimed.
- saturation: mean of max(B,G,R) - min(B,G,R) on a strided view of the colour frame; ~0 for the
  gray image of a camera in IR (night) mode.
- frame_difference: mean absolute difference of two small frames; ~0 for a frozen stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIGNATURE_SHRINK = 4  # the signature and contrast work at 1/4 of the small frame
SATURATION_ROWS = 36  # rows of the strided colour view used for saturation and luma


@dataclass(slots=True)
class FrameFeatures:
    luma: float  # mean gray level of the small frame
    contrast: float  # gray std of the quarter-size copy
    sharpness: float  # variance of the Laplacian of the small frame
    signature: np.ndarray  # float32, zero mean, unit variance (or all zero for a flat frame)


def check_small(small: object) -> np.ndarray:
    if not isinstance(small, np.ndarray) or small.dtype != np.uint8 or small.ndim != 2:
        got = f"{small.dtype} {small.shape}" if isinstance(small, np.ndarray) else type(small).__name__
        raise ValueError(f"health checks need the small uint8 gray frame (HxW), got {got}")
    if small.shape[0] < 8 or small.shape[1] < 8:
        raise ValueError(f"health checks need a small frame of at least 8x8 pixels, got {small.shape}")
    return small


def check_color(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"health checks need a uint8 BGR (HxWx3) or gray (HxW) frame, got {got}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("health checks got an empty frame")
    return image


def quarter(small: np.ndarray) -> np.ndarray:
    rows, cols = small.shape
    size = (max(2, cols // SIGNATURE_SHRINK), max(2, rows // SIGNATURE_SHRINK))
    return cv2.resize(small, size, interpolation=cv2.INTER_AREA)


def signature_of(q: np.ndarray) -> np.ndarray:
    """Band-pass (remove the slow illumination shape) and normalize a quarter-size frame."""
    f = q.astype(np.float32)
    k = max(3, (min(f.shape) // 3) | 1)
    return normalized(f - cv2.GaussianBlur(f, (k, k), 0))


def normalized(f: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (all zero for a flat input)."""
    f = f - float(f.mean())
    std = float(f.std())
    return f / std if std > 1e-3 else np.zeros_like(f)


def features(small: np.ndarray) -> FrameFeatures:
    small = check_small(small)
    q = quarter(small)
    lap = cv2.Laplacian(small, cv2.CV_16S, ksize=1)
    _, lap_std = cv2.meanStdDev(lap)
    mean, std = cv2.meanStdDev(q)
    return FrameFeatures(
        luma=float(mean[0, 0]),  # the quarter-size mean is the small frame's mean (area average)
        contrast=float(std[0, 0]),
        sharpness=float(lap_std[0, 0]) ** 2,
        signature=signature_of(q),
    )


def scene_match(signature: np.ndarray, reference: np.ndarray) -> float:
    """Normalized correlation of two signatures, -1..1 (0 when either is flat or shapes differ)."""
    if signature.shape != reference.shape:
        return 0.0
    norm = float(np.sqrt(float((signature * signature).mean()) * float((reference * reference).mean())))
    if norm < 1e-6:
        return 0.0
    return float((signature * reference).mean()) / norm


def color_view(image: np.ndarray) -> np.ndarray:
    """A strided view of the frame about SATURATION_ROWS rows high (no copy)."""
    step = max(1, image.shape[0] // SATURATION_ROWS)
    return image[::step, ::step]


def saturation(image: np.ndarray) -> float:
    """Mean colour saturation (max - min channel) of a BGR frame; 0 for a gray frame."""
    image = check_color(image)
    if image.ndim == 2 or image.shape[2] < 3:
        return 0.0
    b, g, r = cv2.split(np.ascontiguousarray(color_view(image)[:, :, :3]))
    return float(cv2.mean(cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r)))[0])


def view_luma(image: np.ndarray) -> float:
    """Mean green level of the strided view (the same plane the motion gate uses)."""
    v = color_view(check_color(image))
    return float((v[:, :, 1] if v.ndim == 3 else v).mean())


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two small gray frames (inf when their shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float(cv2.norm(a, b, cv2.NORM_L1)) / a.size
