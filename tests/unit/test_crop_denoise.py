"""Face crops lose their noise before they are upscaled, and clean crops are left alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from edge_agent.enhance.crop_denoise import MIN_SIGMA, denoise_crop, denoise_strength, noise_sigma


def _face(size: int = 40) -> np.ndarray:
    astro = skimage.data.astronaut()[0:200, 150:350, ::-1]  # BGR, the face
    return cv2.resize(np.ascontiguousarray(astro), (size, size), interpolation=cv2.INTER_AREA)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0, luma: bool = False) -> np.ndarray:
    """Gaussian noise of `sigma`, independent per channel, or (luma) the same on every channel."""
    shape = img.shape[:2] + (1,) if luma and img.ndim == 3 else img.shape
    n = np.random.default_rng(seed).normal(0, sigma, shape)
    return np.clip(img.astype(np.float32) + n, 0, 255).round().astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


def test_noise_estimate_follows_the_added_noise_and_ignores_smooth_content():
    ramp = np.tile(np.linspace(40, 200, 64, dtype=np.float32), (64, 1))
    smooth = cv2.GaussianBlur(np.stack([ramp] * 3, axis=2), (0, 0), 3).astype(np.uint8)
    assert noise_sigma(smooth) < 0.5
    for sigma in (3.0, 6.0, 10.0):  # the estimate is of the luma's noise
        est = noise_sigma(_noisy(smooth, sigma, luma=True))
        assert 0.8 * sigma < est < 1.2 * sigma, (sigma, est)
        per_channel = noise_sigma(_noisy(smooth, sigma))  # averaged by the luma: ~0.67 sigma
        assert 0.55 * sigma < per_channel < 0.8 * sigma, (sigma, per_channel)
    assert noise_sigma(np.zeros((2, 2, 3), np.uint8)) == 0.0


def test_a_lifted_dark_face_loses_its_noise_and_stays_as_close_to_the_clean_one():
    """What the agent feeds it: a face at ~12 % exposure with sensor noise, lifted to mid-grey."""
    from edge_agent.enhance.faces import brighten_to_mid

    clean = _face(40)
    dark = clean.astype(np.float32) * 0.12
    for seed, sensor in ((1, 1.5), (2, 2.5)):
        noisy_dark = np.clip(dark + np.random.default_rng(seed).normal(0, sensor, dark.shape), 0, 255)
        lifted = brighten_to_mid(noisy_dark.round().astype(np.uint8))
        reference = brighten_to_mid(dark.round().astype(np.uint8))
        out = denoise_crop(lifted)
        assert out.shape == lifted.shape and out.dtype == np.uint8
        assert noise_sigma(out) < 0.75 * noise_sigma(lifted)  # the estimate also sees the face's detail
        # the face is kept: no further from the clean lifted face than the noisy cut (PSNR here is
        # dominated by the dark frame's coarse quantisation, which no denoiser undoes)
        assert _psnr(out, reference) > _psnr(lifted, reference) - 0.5
    grey = cv2.cvtColor(lifted, cv2.COLOR_BGR2GRAY)
    assert noise_sigma(denoise_crop(grey)) < 0.75 * noise_sigma(grey)


def test_a_clean_crop_is_returned_unchanged_as_a_copy():
    clean = cv2.GaussianBlur(_face(64), (0, 0), 1.0)
    assert noise_sigma(clean) < MIN_SIGMA and denoise_strength(noise_sigma(clean)) == 0.0
    out = denoise_crop(clean)
    assert np.array_equal(out, clean) and out is not clean


def test_strength_grows_with_the_noise_within_its_bounds():
    hs = [denoise_strength(s) for s in (2.0, 4.0, 6.0, 50.0)]
    assert hs == sorted(hs) and hs[0] >= 3.0 and hs[-1] == 10.0


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8,), np.uint8),
                                 np.zeros((0, 5, 3), np.uint8)])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError, match="uint8"):
        denoise_crop(bad)
