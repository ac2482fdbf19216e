"""Synthetic test charts: smooth gradients with a few edges, where any 4/8/16 px grid an
upscaling or a block codec leaves behind shows (export_tools.export.metrics.blockiness)."""

from __future__ import annotations

import numpy as np


def gradient_chart(h: int = 480, w: int = 640, seed: int = 7, colour: bool = True) -> np.ndarray:
    """uint8 chart: gradients with rectangles at random places. colour: RGB gradients and
    rectangles of other colours (HxWx3); else one grey gradient with brighter/darker patches (HxW)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if colour:
        img = np.stack([0.15 + 0.7 * xx / w, 0.2 + 0.6 * yy / h, 0.8 - 0.6 * xx / w], axis=2)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 80))
            img[y0:y0 + int(rng.integers(20, 80)), x0:x0 + int(rng.integers(20, 80))] = rng.uniform(0.1, 0.9, 3)
    else:
        img = 0.2 + 0.5 * xx / w + 0.2 * yy / h
        for _ in range(5):
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            img[y0:y0 + int(rng.integers(10, 40)), x0:x0 + int(rng.integers(10, 40))] += rng.uniform(-0.2, 0.2)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
