"""Low-resolution degradation: seeded reproducibility, sizes, and the patch sampler."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from export_tools.data.lowres import (
    DegradeSpec,
    PatchSampler,
    bicubic_downscale,
    degrade,
    mod_crop,
    night_crop,
)

CCTV = DegradeSpec(scale=4, downsample=["area", "bicubic"], blur_prob=0.5, noise_prob=0.5, jpeg_prob=0.5)


def _img(h=64, w=48, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def test_same_seed_same_output_different_seed_differs():
    hr = _img()
    a = degrade(hr, CCTV, np.random.default_rng(7))
    b = degrade(hr, CCTV, np.random.default_rng(7))
    assert a.shape == (16, 12, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    outs = {degrade(hr, CCTV, np.random.default_rng(s)).tobytes() for s in range(6)}
    assert len(outs) > 1


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_scales_and_bad_sizes(scale):
    hr = mod_crop(_img(50, 70), scale)
    lr = degrade(hr, DegradeSpec(scale=scale), np.random.default_rng(0))
    assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
    if scale > 1:
        with pytest.raises(ValueError, match="multiple of the scale"):
            degrade(_img(scale * 10 + 1, scale * 10), DegradeSpec(scale=scale), np.random.default_rng(0))


def test_antialiased_bicubic_keeps_flat_and_removes_aliasing():
    flat = np.full((32, 32, 3), 100.0, np.float32)
    assert np.allclose(bicubic_downscale(flat, 4), 100.0, atol=1e-3)
    # a 1-pixel checkerboard must average out, not alias into a pattern
    checker = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.float32)[:, :, None].repeat(3, 2)
    small = bicubic_downscale(checker, 4)
    assert small.shape == (8, 8, 3) and np.abs(small[2:-2, 2:-2] - 127.5).max() < 3.0


def test_degrade_rejects_bad_input_and_spec():
    with pytest.raises(ValueError, match="uint8"):
        degrade(np.zeros((8, 8, 3), np.float32), DegradeSpec(), np.random.default_rng(0))
    with pytest.raises(ValidationError):
        DegradeSpec(noise_sigma=(5.0, 1.0))
    with pytest.raises(ValidationError):
        DegradeSpec(jpeg_quality=(10, 120))
    with pytest.raises(ValidationError):
        DegradeSpec(blurr_prob=0.5)


def test_patch_sampler_reproducible_and_resumable():
    imgs = [_img(80, 90, 1), _img(100, 64, 2)]
    s1 = PatchSampler(imgs, CCTV, hr_patch=32, seed=3)
    lr, hr = s1.batch(4)
    assert lr.shape == (4, 3, 8, 8) and hr.shape == (4, 3, 32, 32)
    assert lr.dtype == np.float32 and 0.0 <= lr.min() and hr.max() <= 1.0
    state = s1.state()
    nxt = s1.batch(2)
    s2 = PatchSampler(imgs, CCTV, hr_patch=32, seed=3)
    assert np.array_equal(s2.batch(4)[0], lr)
    s3 = PatchSampler(imgs, CCTV, hr_patch=32, seed=99)
    s3.set_state(state)
    assert np.array_equal(s3.batch(2)[1], nxt[1])
    with pytest.raises(ValueError, match="at least"):
        PatchSampler(imgs, CCTV, hr_patch=200, seed=0)


def test_night_crop_pairs_are_lifted_like_the_agent_lifts_and_stay_consistent():
    """night_prob: the LR is a dark, noisy, 8-bit crop lifted to mid-grey and denoised as the agent
    does; the HR target is the clean photo at the same exposure through the same gamma, so the pair
    still agrees (downscaled target ~ input)."""
    import skimage.data

    from edge_agent.enhance.faces import MID_GRAY

    hr_img = skimage.data.chelsea()[:192, :192].copy()
    spec = DegradeSpec(scale=4, night_prob=1.0, night_exposure=(0.1, 0.2), night_noise=(1.0, 2.0))
    s = PatchSampler([hr_img], spec, hr_patch=64, seed=3)
    for _ in range(4):
        lr, hr = s.sample()
        assert lr.shape == (16, 16, 3) and hr.shape == (64, 64, 3) and lr.dtype == hr.dtype == np.uint8
        assert abs(lr.mean() / 255.0 - MID_GRAY) < 0.12  # lifted to mid-grey, not left dark
        assert hr.mean() > 0.6 * lr.mean()  # the target is lifted too
        down = bicubic_downscale(hr.astype(np.float32), 4)
        mse = float(np.mean((down - lr.astype(np.float32)) ** 2))
        assert 10 * np.log10(255.0**2 / mse) > 20.0
    again = PatchSampler([hr_img], spec, hr_patch=64, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again.sample(), PatchSampler([hr_img], spec, 64, 3).sample(),
                                                         strict=True))
    with pytest.raises(ValidationError):
        DegradeSpec(night_exposure=(0.0, 0.2))
    with pytest.raises(ValidationError):
        DegradeSpec(night_prob=1.5)


def _grid_energy(img: np.ndarray) -> float:
    """Mean |step| across the columns where an 8x8 block grid can fall, over the mean |step| elsewhere
    (luma): 1.0 for no grid, above 1 for blocking (at whatever offset the grid has)."""
    y = img.astype(np.float32).mean(axis=2)
    steps = np.abs(np.diff(y, axis=1)).mean(axis=0)
    per_phase = [steps[k::8].mean() for k in range(8)]
    return float(max(per_phase) / np.median(per_phase))


def test_night_codec_codes_the_dark_crop_so_the_lift_shows_its_blocks():
    """night_codec_prob: the dark crop is JPEG-coded before the agent's lift, so the LR the model
    learns from carries amplified 8x8 blocking (a clear grid against the uncoded crops); the target
    does not change; the same seed gives the same pair, and the quality range is validated."""
    import skimage.data

    hr_img = skimage.data.astronaut()[:256, :256].copy()
    base = dict(scale=4, night_prob=1.0, night_exposure=(0.08, 0.1), night_noise=(1.0, 1.5))
    plain = DegradeSpec(**base)
    coded = DegradeSpec(**base, night_codec_prob=1.0, night_codec_quality=(30, 40))
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    lr_img = bicubic_downscale(hr_img.astype(np.float32), 4).clip(0, 255).astype(np.uint8)  # 64x64
    grid_plain, grid_coded = [], []
    for _ in range(6):
        lr_p, hr_p = night_crop(lr_img, hr_img, plain, rng_a)
        lr_c, hr_c = night_crop(lr_img, hr_img, coded, rng_b)
        assert lr_c.shape == lr_p.shape == (64, 64, 3) and hr_c.shape == (256, 256, 3)
        grid_plain.append(_grid_energy(lr_p))
        grid_coded.append(_grid_energy(lr_c))
    assert np.mean(grid_coded) > 1.3 * np.mean(grid_plain)
    again = night_crop(lr_img, hr_img, coded, np.random.default_rng(11))
    assert np.array_equal(again[0], night_crop(lr_img, hr_img, coded, np.random.default_rng(11))[0])
    with pytest.raises(ValidationError):
        DegradeSpec(night_codec_quality=(0, 50))
