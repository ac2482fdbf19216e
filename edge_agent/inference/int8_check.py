"""Does an INT8 file compute, on this CPU, what its float original computes?

INT8 kernels differ between CPUs (AVX2, AVX-512 VNNI, AMX) and a runtime's graph fusions differ with
them: an ONNX Runtime INT8 face-SR graph that the gate passed on an AVX-512 machine lost 15 dB on an
AVX2-only one. So the loader runs the INT8 runner and the float runner of the same backend on one
fixed probe image and keeps INT8 only when their outputs agree to INT8_MIN_PSNR_DB; otherwise it
uses the float file and logs why. Only image-to-image models (low light, face SR) are probed.
"""

from __future__ import annotations

import numpy as np

from edge_agent.inference.base import ModelRunner

# Measured on the probe: the shipped INT8 files agree with their float originals to 30 dB (lowlight
# 1.1.0, whose strong brightening magnifies small differences) and 44-46 dB (face_sr 2.0.0); the
# broken fusion (not reproduced here) moved the output 15 dB further from the reference, far below
# either. 22 dB sits between the two with a margin on each side.
INT8_MIN_PSNR_DB = 22.0
PROBE_TASKS = ("low_light", "face_sr")
PROBE_RATIO = 5.0  # the low-light probe is a frame at 1/5 of its light, given back with ratio 5
_PROBE_SIDE = {"low_light": 64, "face_sr": 32}


def probe_image(side: int, dark: bool) -> np.ndarray:
    """[1,3,side,side] float32 in [0, 1]: gradients, a sinusoid texture and hard-edged squares (what
    quantization errors show on), dimmed to 1/PROBE_RATIO for a night frame."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
    base = np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(12.0 * x + 7.0 * y)])
    q = side // 4
    base[:, q:2 * q, q:2 * q] = np.array([0.9, 0.15, 0.1], np.float32)[:, None, None]
    base[:, 2 * q:3 * q, 2 * q:3 * q] = np.array([0.05, 0.3, 0.85], np.float32)[:, None, None]
    img = np.clip(base, 0.0, 1.0) / (PROBE_RATIO if dark else 1.0)
    return np.ascontiguousarray(img[None].astype(np.float32))


def probe_feeds(task: str, pad_multiple: int, input_names: list[str]) -> dict[str, np.ndarray]:
    side = -(-_PROBE_SIDE[task] // pad_multiple) * pad_multiple
    feeds = {"image": probe_image(side, dark=task == "low_light")}
    if "ratio" in input_names:
        feeds["ratio"] = np.full((1, 1), PROBE_RATIO, np.float32)
    return feeds


def agreement_db(a: ModelRunner, b: ModelRunner, feeds: dict[str, np.ndarray]) -> float:
    """PSNR (dB, outputs clipped to [0, 1]) between the first outputs of two runners on the same feeds."""
    out_a = np.clip(next(iter(a.run(feeds).values())), 0.0, 1.0).astype(np.float64)
    out_b = np.clip(next(iter(b.run(feeds).values())), 0.0, 1.0).astype(np.float64)
    if out_a.shape != out_b.shape:
        return 0.0
    mse = float(np.mean((out_a - out_b) ** 2))
    return 100.0 if mse <= 1e-10 else float(min(100.0, 10.0 * np.log10(1.0 / mse)))
