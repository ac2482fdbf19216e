"""Night-frame synthesis: reproducible with a seed, darker, noisy, compressed; clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from export_tools.data.lowlight import NightParams, NightPatches, h264_like, jpeg, synth_night


def _photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 7.0)], -1) * 200 + 30
    return np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)


def test_same_seed_same_frame_and_meta():
    img = _photo()
    a, meta_a = synth_night(img, np.random.default_rng(42))
    b, meta_b = synth_night(img, np.random.default_rng(42))
    c, _ = synth_night(img, np.random.default_rng(43))
    assert np.array_equal(a, b) and meta_a == meta_b
    assert not np.array_equal(a, c)


def test_night_frame_is_darker_and_keeps_shape():
    img = _photo()
    for seed in range(5):
        low, meta = synth_night(img, np.random.default_rng(seed))
        assert low.shape == img.shape and low.dtype == np.uint8
        assert 0.01 <= meta["exposure"] <= 0.2
        assert low.mean() < 0.75 * img.mean()


def test_sensor_noise_is_signal_dependent():
    flat_dark = np.full((64, 64, 3), 60, np.uint8)
    flat_bright = np.full((64, 64, 3), 230, np.uint8)
    params = NightParams(exposure=(0.2, 0.2), cast=0.0, jpeg_prob=0.0, h264_prob=0.0)
    dark, _ = synth_night(flat_dark, np.random.default_rng(0), params)
    bright, _ = synth_night(flat_bright, np.random.default_rng(0), params)
    assert dark.std() > 0.5  # a flat scene comes out noisy
    # shot noise grows with the signal (in linear units): brighter flat field -> larger spread
    lin = lambda x: (x.astype(np.float64) / 255.0) ** 2.2  # noqa: E731
    assert lin(bright).std() > lin(dark).std()


def test_codecs_change_the_image_but_not_its_shape():
    img = _photo(50, 70)
    j = jpeg(img, 20)
    h = h264_like(img, 24.0)
    for out in (j, h):
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
        assert np.abs(out.astype(int) - img.astype(int)).mean() < 25
    # the blocky codec is coarser with a bigger quantiser step
    err = lambda q: np.abs(h264_like(img, q).astype(int) - img.astype(int)).mean()  # noqa: E731
    assert err(40.0) > err(2.0)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), "image"])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError, match="RGB uint8"):
        synth_night(bad, np.random.default_rng(0))


def test_patch_batches_are_seeded_and_shaped():
    imgs = [_photo(seed=s) for s in range(3)]
    low_a, high_a = NightPatches(imgs, 32, seed=5).batch(4)
    low_b, high_b = NightPatches(imgs, 32, seed=5).batch(4)
    assert low_a.shape == high_a.shape == (4, 3, 32, 32) and low_a.dtype == np.float32
    assert np.array_equal(low_a, low_b) and np.array_equal(high_a, high_b)
    assert 0.0 <= low_a.min() and high_a.max() <= 1.0
    assert low_a.mean() < high_a.mean()


def test_patch_larger_than_image_is_refused():
    with pytest.raises(ValueError, match="smaller than patch"):
        NightPatches([_photo(20, 20)], 32, seed=0)
