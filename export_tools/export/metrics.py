"""Image quality metrics and the classic baselines the shipped models must beat (numpy + OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from edge_agent.enhance.tensors import rgb_to_y

PSNR_CAP_DB = 100.0  # what psnr() reports for identical images


def unit(img: np.ndarray) -> np.ndarray:
    """float64 in [0, 1]: uint8 images are divided by 255, float images are taken as they are."""
    a = np.asarray(img)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of two images (uint8, or float with values up to `peak`); PSNR_CAP_DB when equal.
    The one PSNR of the toolchain: quality gates, verify reports, training evaluation, ONNX parity."""
    mse = float(np.mean((unit(a) - unit(b)) ** 2))
    return PSNR_CAP_DB if mse <= 1e-10 * peak * peak else min(PSNR_CAP_DB, float(10.0 * np.log10(peak * peak / mse)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two images (uint8 or float in [0, 1]), HxW or HxWx3, the convention of Wang et al. 2004
    that the SR and low-light papers report: 11x11 Gaussian window (sigma 1.5), population covariance."""
    a, b = unit(a), unit(b)
    kw = {"channel_axis": 2} if a.ndim == 3 else {}
    return float(structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, **kw))


def _border(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def luma(img: np.ndarray, border: int = 0) -> np.ndarray:
    """BT.601 Y in [0, 1] of an RGB image (uint8 or float, clipped to [0, 1]), `border` pixels shaved."""
    return _border(rgb_to_y(np.clip(unit(img), 0.0, 1.0)), border)


def y_psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Y-PSNR (the SR papers' metric) of two RGB images, `border` pixels shaved."""
    return psnr(luma(a, border), luma(b, border))


def y_ssim(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Y-SSIM of two RGB images, `border` pixels shaved."""
    return ssim(luma(a, border), luma(b, border))


def rgb_scores(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) on RGB, the low-light metric."""
    return psnr(out, ref), ssim(out, ref)


def gt_mean(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`out` (uint8 or float in [0, 1]) scaled so its mean brightness is the reference's, as uint8: the
    "GT-mean" protocol of low-light papers (it forgives a wrong overall brightness; only plain PSNR is
    what a viewer gets)."""
    o = unit(out)
    return to_u8(o * (float(unit(ref).mean()) / max(float(o.mean()), 1e-6)))


def low_light_extras(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """The low-light report's scores beside PSNR / SSIM: PSNR at the reference's brightness (GT-mean)
    and the mean CIEDE2000 colour error."""
    return {"psnr_gt_mean": psnr(gt_mean(out, ref), ref), "ciede2000": ciede2000(out, ref)}


def y_scores(out: np.ndarray, ref: np.ndarray, border: int) -> tuple[float, float]:
    """(Y-PSNR, Y-SSIM) with `border` pixels shaved, the SR papers' metric."""
    return y_psnr(out, ref, border), y_ssim(out, ref, border)


def to_float(rgb_u8: np.ndarray) -> np.ndarray:
    return rgb_u8.astype(np.float32) / 255.0


def to_u8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def gamma_to_mean(rgb_u8: np.ndarray, target_mean: float) -> np.ndarray:
    """Plain gamma correction with the exponent that brings the mean brightness to target_mean
    (the reference's mean brightness: an oracle-tuned gamma, the strongest version of this baseline)."""
    x = np.clip(rgb_u8.astype(np.float64) / 255.0, 1e-4, 1.0)
    g = np.log(max(target_mean, 1e-3)) / np.log(max(float(x.mean()), 1e-3))
    return to_u8(x**g)


def clahe(rgb_u8: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """CLAHE on the L channel of Lab (the usual OpenCV recipe); RGB uint8 out."""
    lab = cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def low_light_baselines(night_u8: np.ndarray, reference_u8: np.ndarray) -> dict[str, np.ndarray]:
    """gamma, CLAHE and gamma+CLAHE of a night frame, as float RGB in [0, 1]."""
    gam = gamma_to_mean(night_u8, float(reference_u8.mean()) / 255.0)
    return {"gamma": to_float(gam), "clahe": to_float(clahe(night_u8)), "gamma+clahe": to_float(clahe(gam))}


def bicubic(lr_u8: np.ndarray, scale: int) -> np.ndarray:
    h, w = lr_u8.shape[:2]
    return to_float(cv2.resize(lr_u8, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC))


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference of two RGB images (uint8 or float in [0, 1]): the low-light
    colour error (0 = the same colours; about 2.3 is a just-noticeable difference)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(np.clip(unit(a), 0, 1)), rgb2lab(np.clip(unit(b), 0, 1)))))


BLOCK_PERIODS = (4, 8, 16)  # the grids a downsampled restoration or a block codec leaves


BLOCK_CLIP = 4.0 / 255.0  # a boundary's excess counts up to 4 grey levels (real edges are few and large)


def blockiness(img: np.ndarray, periods: tuple[int, ...] = BLOCK_PERIODS) -> float:
    """How strongly a regular grid of block edges shows in a picture (uint8 or float, HxW or HxWx3),
    in grey levels.

    For every pixel boundary along a row (and a column) the step |I(j+1) - I(j)| is compared with the
    steps on either side (its excess: step - mean of the two neighbouring steps, so a ramp or a
    texture cancels), clipped to +-BLOCK_CLIP so that the few real edges of a scene weigh little.
    Boundaries are grouped by their position modulo each period P; the score is the largest group
    mean less the median of the group means, in 8-bit grey levels, the largest over both axes and
    every period. No grid (a gradient, edges at random places, a clean photo): well under 0.5.
    Blocks of P pixels whose edges carry a step of a grey level or more: 1 and up.
    """
    y = unit(img)
    if y.ndim == 3:
        y = y.mean(axis=2)
    score = 0.0
    for arr in (y, y.T):
        steps = np.abs(np.diff(arr, axis=1))  # [rows, boundaries]
        if steps.shape[1] < 3:
            continue
        excess = np.clip(steps[:, 1:-1] - 0.5 * (steps[:, :-2] + steps[:, 2:]), -BLOCK_CLIP, BLOCK_CLIP)
        for p in periods:
            if excess.shape[1] < 4 * p:
                continue
            groups = [float(excess[:, ph::p].mean()) for ph in range(p)]
            score = max(score, (max(groups) - float(np.median(groups))) * 255.0)
    return score
