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


def _chart(h: int = 128, w: int = 192, seed: int = 0):
    from export_tools.data.charts import gradient_chart

    return gradient_chart(h, w, seed, colour=False)


def test_blockiness_sees_a_grid_and_not_a_gradient_with_edges():
    import cv2
    import skimage.data

    from export_tools.export.metrics import blockiness

    chart = _chart()
    assert blockiness(chart) < 0.3
    assert blockiness(np.stack([chart] * 3, axis=2)) < 0.3
    for name in ("astronaut", "chelsea", "coffee"):  # photos: edges everywhere, but no grid
        assert blockiness(getattr(skimage.data, name)()) < 0.5, name
    for p in (4, 8, 16):  # restoration at 1/p resolution, shown with nearest upsampling: blocks of p px
        small = cv2.resize(chart, (chart.shape[1] // p, chart.shape[0] // p), interpolation=cv2.INTER_AREA)
        blocky = cv2.resize(small, (chart.shape[1], chart.shape[0]), interpolation=cv2.INTER_NEAREST)
        assert blockiness(blocky) > 2.0, p
    ok, buf = cv2.imencode(".jpg", chart, [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert blockiness(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)) > 1.5  # a block codec's 8 px grid
    smooth_up = cv2.resize(cv2.resize(chart, (48, 32), interpolation=cv2.INTER_AREA), (192, 128),
                           interpolation=cv2.INTER_LINEAR)
    assert blockiness(smooth_up) < 0.3  # soft, but no grid


def test_ciede2000_is_zero_for_the_same_picture_and_grows_with_a_colour_cast():
    from export_tools.export.metrics import ciede2000

    img = np.stack([_chart(seed=s) for s in (1, 2, 3)], axis=2)
    assert ciede2000(img, img) == 0.0
    cast = np.clip(img.astype(np.int16) + np.array([25, 0, -25]), 0, 255).astype(np.uint8)
    strong = np.clip(img.astype(np.int16) + np.array([60, 0, -60]), 0, 255).astype(np.uint8)
    assert 2.0 < ciede2000(img, cast) < ciede2000(img, strong)
