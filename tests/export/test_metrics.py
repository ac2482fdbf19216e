"""The one metrics module (export_tools/export/metrics.py): PSNR/SSIM conventions and the baselines."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from export_tools.export import metrics


def _pair(seed=0, shape=(48, 40, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-12, 13, shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_is_one_number_for_uint8_and_float_and_matches_skimage():
    a, b = _pair()
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert metrics.psnr(a, b) == pytest.approx(ref, abs=1e-9)
    assert metrics.psnr(a.astype(np.float32) / 255, b.astype(np.float32) / 255) == pytest.approx(ref, abs=1e-4)
    assert metrics.psnr(a, a) == metrics.PSNR_CAP_DB
    assert metrics.psnr(a, b) < metrics.PSNR_CAP_DB


def test_ssim_follows_wang_et_al_and_is_one_for_identical_images():
    from skimage.metrics import structural_similarity

    a, b = _pair(1, (64, 64))
    ref = structural_similarity(a.astype(np.float64) / 255, b.astype(np.float64) / 255, data_range=1.0,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, b) < 0.999


def test_y_metrics_shave_the_border():
    a, b = _pair(2, (40, 40, 3))
    c = b.copy()
    c[:4] = 0  # damage only the border rows
    assert metrics.y_psnr(a, c, border=4) == pytest.approx(metrics.y_psnr(a, b, border=4))
    assert metrics.y_psnr(a, c, border=0) < metrics.y_psnr(a, b, border=0)
    p, s = metrics.y_scores(a, b, 4)
    assert p == metrics.y_psnr(a, b, 4) and s == metrics.y_ssim(a, b, 4)


def test_gamma_baseline_matches_brightness_and_beats_the_dark_input():
    rng = np.random.default_rng(0)
    high = np.clip(rng.normal(140, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
    low = (high * 0.2).astype(np.uint8)
    gam = metrics.gamma_to_mean(low, high.mean() / 255.0)
    assert abs(gam.mean() - high.mean()) < 15
    assert metrics.psnr(gam, high) > metrics.psnr(low, high)
    assert metrics.clahe(low).shape == low.shape
