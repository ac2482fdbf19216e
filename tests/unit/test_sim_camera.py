"""The night camera simulation: seeded, darker with less exposure, noise grows with signal, IR is grey."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge_agent.sim import camera

RAMP = np.repeat(np.linspace(0.05, 0.95, 256, dtype=np.float32)[None, :, None], 64, axis=0).repeat(3, axis=2)


def test_seeded_and_exposure_sets_brightness():
    p = camera.sample_params(np.random.default_rng(1), exposure=(0.05, 0.05), jpeg_quality=None)
    a = camera.render(RAMP, p, np.random.default_rng(2))
    b = camera.render(RAMP, p, np.random.default_rng(2))
    assert np.array_equal(a, b)
    fixed = replace(p, gain=1.0)
    dark = camera.render(RAMP, fixed, np.random.default_rng(2))
    brighter = camera.render(RAMP, replace(fixed, exposure=0.15), np.random.default_rng(2))
    assert brighter.mean() > dark.mean() * 1.3 and dark.mean() < RAMP.mean() * 255 * 0.6


def test_agc_lifts_a_dark_scene_up_to_its_gain_limit():
    p = camera.sample_params(np.random.default_rng(1), exposure=(0.05, 0.05), jpeg_quality=None)
    g = camera.agc_gain(RAMP, p)
    assert 1.0 < g < p.max_gain
    lifted = camera.render(RAMP, p, np.random.default_rng(2))
    assert lifted.mean() > camera.render(RAMP, replace(p, gain=1.0), np.random.default_rng(2)).mean() * 1.5
    deep = replace(p, exposure=0.002)  # darker than the gain can make up for
    assert camera.agc_gain(RAMP, deep) == p.max_gain
    assert camera.render(RAMP, deep, np.random.default_rng(2)).mean() < lifted.mean()


def test_noise_is_heteroscedastic_and_ir_is_grey():
    p = camera.sample_params(np.random.default_rng(3), exposure=(0.1, 0.1), jpeg_quality=None)
    p = replace(p, shot_noise=1e-2, read_noise=1e-6)
    raw = camera.night_linear(RAMP, p, np.random.default_rng(4))
    clean = camera.night_linear(RAMP, replace(p, shot_noise=0.0, read_noise=0.0), np.random.default_rng(4))
    err = raw - clean
    assert err[:, 200:].std() > err[:, :40].std() * 1.5  # brighter part, more noise
    ir = camera.render(RAMP, replace(p, ir=True), np.random.default_rng(5))
    assert np.array_equal(ir[..., 0], ir[..., 1]) and np.array_equal(ir[..., 1], ir[..., 2])
