"""Denoising of face crops before they are upscaled (OpenCV non-local means, numpy).

A face cut from a dark frame and lifted to mid-grey carries the sensor noise of the night, made
larger by the lift (sigma ~3-6 grey levels on the night benchmark's 24-40 px faces). Upscaling
(bicubic or SR) turns that noise into texture that a face descriptor, or an operator, mistakes for
detail. Non-local means with a strength set from the crop's own noise estimate removes it and leaves
a clean crop alone: on benchmarks/night_yield.py the faces of 24-40 px were identified far more
often after it (the report gives the numbers).
"""

from __future__ import annotations

import cv2
import numpy as np

# Immerkaer's fast noise estimate: this Laplacian-difference kernel cancels smooth image content
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
MIN_SIGMA = 1.5  # below this (grey levels) a crop is left as it is: clean daylight or a good camera
STRENGTH = 1.3  # non-local means h = STRENGTH x the estimated sigma, within H_RANGE
H_RANGE = (3.0, 10.0)


def noise_sigma(img: np.ndarray, order: str = "bgr") -> float:
    """Standard deviation of white noise in a uint8 picture (grey levels), Immerkaer 1996:
    sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|, on the luma (channels in `order`, bgr as the agent
    holds frames, or rgb). 0.0 for a picture under 3x3."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if order == "bgr" else cv2.COLOR_RGB2GRAY)
    if img.shape[0] < 3 or img.shape[1] < 3:
        return 0.0
    r = cv2.filter2D(img.astype(np.float32), -1, _KERNEL)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(r).mean() / 6.0)


def denoise_strength(sigma: float) -> float:
    """The non-local means h for a crop of noise `sigma`; 0.0 means leave it as it is."""
    if sigma < MIN_SIGMA:
        return 0.0
    return float(np.clip(STRENGTH * sigma, *H_RANGE))


def denoise_crop(img: np.ndarray, order: str = "bgr") -> np.ndarray:
    """A uint8 HxWx3 (or HxW) crop with its noise removed by non-local means (search window 9,
    patch 3: a few ms for a 96 px crop), or an unchanged copy when it has little noise."""
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise ValueError(f"expected a uint8 HxW or HxWx3 picture, got {img.dtype} {img.shape}")
    h = denoise_strength(noise_sigma(img, order))
    if h <= 0.0:
        return img.copy()
    src = np.ascontiguousarray(img)
    if src.ndim == 2:
        return cv2.fastNlMeansDenoising(src, None, h, 3, 9)
    return cv2.fastNlMeansDenoisingColored(src, None, h, h, 3, 9)
