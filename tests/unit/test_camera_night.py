"""Camera-like night synthesis (Brooks et al. 2019 unprocessing): invertibility, determinism, darkness,
noise that grows as the light shrinks, IR mode, the auto white balance colour cast, input checks."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import skimage.data

from export_tools.data.camera_night import CameraNightSpec, process, synth_camera_night, unprocess

ASTRO = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4])  # 128x128, saturated colours
CAT = np.ascontiguousarray(skimage.data.chelsea()[::3, ::3])
PLAIN = dict(ir_prob=0.0, jpeg_prob=0.0)
TRUE_KEYS = ("rgb2cam", "red_gain", "blue_gain", "digital_gain")


def night(img: np.ndarray, seed: int, **kw) -> tuple[np.ndarray, dict]:
    return synth_camera_night(img, CameraNightSpec(**kw), np.random.default_rng(seed))


def noise_free(img: np.ndarray, meta: dict) -> np.ndarray:
    """The same frame (same camera, exposure, ISP settings) without sensor noise."""
    lin, _ = unprocess(img, np.random.default_rng(0), {k: meta[k] for k in TRUE_KEYS})
    return process(np.clip(lin * meta["exposure"], 0.0, 1.0), meta["isp"])


@pytest.mark.parametrize("seed", range(4))
def test_process_inverts_unprocess_with_the_true_camera(seed):
    rand = np.random.default_rng(99).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # every grey level
    for img in (ASTRO, CAT, rand, ramp):
        lin, params = unprocess(img, np.random.default_rng(seed))
        assert lin.dtype == np.float32 and lin.shape == img.shape
        assert np.abs(process(lin, params).astype(int) - img).max() <= 2
    # and the camera is really in the loop: another camera's settings do not invert it
    _, other = unprocess(ASTRO, np.random.default_rng(seed + 100))
    lin, _ = unprocess(ASTRO, np.random.default_rng(seed))
    assert np.abs(process(lin, other).astype(int) - ASTRO).max() > 2


def test_same_seed_same_frame_other_seed_other_frame():
    spec = dict(ir_prob=0.5, jpeg_prob=0.5)
    a, meta_a = night(ASTRO, 7, **spec)
    b, meta_b = night(ASTRO, 7, **spec)
    c, _ = night(ASTRO, 8, **spec)
    assert a.dtype == np.uint8 and a.shape == ASTRO.shape
    assert np.array_equal(a, b) and meta_a == meta_b
    assert not np.array_equal(a, c)
    assert set(meta_a) >= {"exposure", "shot", "read", "red_gain", "blue_gain", "ir", "jpeg_quality", "isp"}


def test_noise_levels_follow_brooks_joint_sampling():
    shots, reads = [], []
    for seed in range(40):
        _, meta = night(CAT[:16, :16], seed, shot_noise=(1e-4, 1.2e-2), **PLAIN)
        shots.append(meta["shot"])
        reads.append(meta["read"])
    log_shot, log_read = np.log(shots), np.log(reads)
    assert np.log(1e-4) <= log_shot.min() and log_shot.max() <= np.log(1.2e-2)
    resid = log_read - (2.18 * log_shot + 1.20)  # read variance tied to the shot noise, N(0, 0.26)
    assert np.abs(resid).max() < 4 * 0.26 and 0.1 < resid.std() < 0.45, resid.std()
    _, meta = night(CAT[:16, :16], 0, noise=False, **PLAIN)
    assert meta["shot"] == meta["read"] == 0.0


def test_low_exposure_frames_are_dark():
    for seed in range(8):
        out, meta = night(ASTRO, seed, exposure=(0.01, 0.04), **PLAIN)
        assert 0.01 <= meta["exposure"] <= 0.04
        assert out.mean() < 0.35 * ASTRO.mean(), (seed, out.mean(), meta)


@pytest.mark.parametrize("seed", range(3))
def test_noise_grows_as_exposure_shrinks(seed):
    # Same seed: same camera, noise levels and noise draws; only the light changes.
    # Auto exposure reaching its target: equal brightness, so the noise itself grows.
    spec = dict(ae_target=(0.1, 0.1), max_gain=(100.0, 100.0), shot_noise=(1e-4, 3e-3), **PLAIN)
    noise, rel = [], []
    for e in (0.08, 0.03, 0.01):
        out, meta = night(ASTRO, seed, exposure=(e, e), **spec)
        clean = noise_free(ASTRO, meta)
        noise.append((out.astype(float) - clean).std())
    assert noise[0] < noise[1] < noise[2], noise
    # Default ISP (gain capped): darker frames; the noise relative to the signal grows.
    for e in (0.08, 0.03, 0.01):
        out, meta = night(ASTRO, seed, exposure=(e, e), **PLAIN)
        clean = noise_free(ASTRO, meta)
        rel.append((out.astype(float) - clean).std() / max(clean.mean(), 1.0))
    assert rel[0] < rel[1] < rel[2], rel
    # and without noise the frame is exactly the noise-free one
    out, meta = night(ASTRO, seed, exposure=(0.03, 0.03), noise=False, **PLAIN)
    assert np.array_equal(out, noise_free(ASTRO, meta))


def test_ir_mode_is_monochrome_also_through_jpeg():
    for jpeg_prob in (0.0, 1.0):
        out, meta = night(CAT, 3, ir_prob=1.0, jpeg_prob=jpeg_prob)
        assert meta["ir"] and (meta["jpeg_quality"] is None) == (jpeg_prob == 0.0)
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
        assert out.std() > 0  # a picture, not a flat frame
    colour, meta = night(CAT, 3, ir_prob=0.0, jpeg_prob=0.0)
    assert not meta["ir"] and not np.array_equal(colour[..., 0], colour[..., 2])


def channel_ratios(out: np.ndarray) -> np.ndarray:
    m = out.reshape(-1, 3).astype(float).mean(0)
    return m / m.mean()


def test_auto_white_balance_error_gives_a_colour_cast_and_none_without_it():
    grey = np.full((32, 32, 3), 128, np.uint8)
    common = dict(noise=False, exposure=(0.1, 0.15), **PLAIN)
    neutral = [channel_ratios(night(grey, s, wb_error=(1.0, 1.0), **common)[0]) for s in range(12)]
    cast = [channel_ratios(night(grey, s, **common)[0]) for s in range(12)]
    for r in neutral:  # true gains + a wrong colour matrix whose rows sum to 1: grey stays grey
        assert np.abs(r - 1.0).max() < 0.02, r
    worst = [np.abs(r - 1.0).max() for r in cast]
    assert max(worst) > 0.05, worst  # some frames are clearly tinted
    spread = np.std([r[0] / r[2] for r in cast])
    assert spread > 0.03, spread  # and the tint varies from frame to frame


def test_bad_input_is_refused_with_a_clear_message():
    rng = np.random.default_rng(0)
    bad = [ASTRO.astype(np.float32), ASTRO[..., 0], ASTRO[..., :2], np.zeros((4, 4, 4), np.uint8), [[1, 2, 3]]]
    for img in bad:
        with pytest.raises(ValueError, match="RGB uint8 HxWx3"):
            synth_camera_night(img, CameraNightSpec(), rng)
        with pytest.raises(ValueError, match="RGB uint8 HxWx3"):
            unprocess(img, rng)


@pytest.mark.parametrize("kw", [
    {"exposures": (0.01, 0.1)},  # unknown key
    {"exposure": (0.2, 0.1)}, {"exposure": (0.0, 0.1)}, {"exposure": (0.1, 2.0)},
    {"shot_noise": (1e-2, 1e-4)}, {"wb_error": (1.25, 0.8)}, {"ae_target": (0.3, 0.1)},
    {"max_gain": (0.5, 2.0)}, {"max_gain": (4.0, 2.0)}, {"jpeg_quality": (90, 40)},
    {"jpeg_quality": (0, 50)}, {"jpeg_quality": (50, 101)}, {"ir_prob": 1.5}, {"jpeg_prob": -0.1},
    {"ccm_error": 2.0},
])
def test_spec_refuses_unknown_keys_and_bad_ranges(kw):
    with pytest.raises(pydantic.ValidationError):
        CameraNightSpec(**kw)
