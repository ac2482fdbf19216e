"""MotionGate on generated scenes: debounce, off delay, masks, zones, lighting jumps, live reconfigure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.config.schema import MotionConfig, Polygon, Zone
from edge_agent.motion.gate import MotionGate, effective_threshold

H, W = 360, 640
DT = 0.1  # seconds between frames


def scene(seed: int = 0, size: tuple[int, int] = (H, W)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return cv2.resize(base, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


BASE = scene()
NOISE = np.random.default_rng(5)


def frame(box_x: int | None = None, box_y: int = 140, size: int = 60, base: np.ndarray = BASE) -> np.ndarray:
    """The static scene with sensor noise and, optionally, a bright box at (box_x, box_y)."""
    img = cv2.add(base, NOISE.integers(0, 4, base.shape, dtype=np.uint8))
    if box_x is not None:
        cv2.rectangle(img, (box_x, box_y), (box_x + size, box_y + size), (250, 250, 250), -1)
    return img


def run(gate: MotionGate, frames: list[np.ndarray], t0: float = 0.0):
    return [gate.update(f, t0 + i * DT) for i, f in enumerate(frames)]


def static(n: int) -> list[np.ndarray]:
    return [frame() for _ in range(n)]


def moving(n: int, x0: int = 40, step: int = 25, y: int = 140) -> list[np.ndarray]:
    return [frame(x0 + i * step, y) for i in range(n)]


def test_sensitivity_maps_onto_the_threshold():
    assert effective_threshold(25, 0.5) == 25
    assert effective_threshold(25, 1.0) == 12  # round(12.5) -> 12
    assert effective_threshold(25, 0.0) == 50
    assert effective_threshold(200, 0.0) == 255 and effective_threshold(1, 1.0) == 1


def test_moving_box_fires_after_min_frames_and_ends_after_off_delay():
    gate = MotionGate(MotionConfig(min_motion_frames=3, off_delay_s=0.5))
    res = run(gate, static(5) + moving(8) + static(10))
    quiet, motion, after = res[:5], res[5:13], res[13:]
    assert not any(r.active or r.boxes for r in quiet)
    assert [r.active for r in motion[:3]] == [False, False, True]
    assert motion[2].started and sum(r.started for r in res) == 1
    assert all(r.active and r.boxes for r in motion[2:])
    # the box is found where it is: x ~ (40 + 7*25)/640, y ~ 140/360 (normalized)
    assert any(abs(x - 215 / W) < 0.06 and abs(y - 140 / H) < 0.06 for x, y, _, _ in motion[-1].boxes)
    # off delay 0.5 s at 10 fps: still ON for 4 quiet frames, OFF on the 5th (0.5 s after the last motion)
    ended = [i for i, r in enumerate(after) if r.ended]
    assert ended == [4], [(r.active, r.boxes) for r in after]
    assert all(r.active for r in after[:4]) and not any(r.active for r in after[4:])


def test_a_single_motion_frame_does_not_turn_on():
    gate = MotionGate(MotionConfig(min_motion_frames=2))
    res = run(gate, static(3) + [frame(300)] + static(3) + [frame(100)] + static(3))
    assert not any(r.active for r in res)
    assert sum(bool(r.boxes) for r in res) >= 2


def test_small_changes_below_min_area_are_ignored():
    gate = MotionGate(MotionConfig(min_area=0.01, min_motion_frames=1))
    res = run(gate, static(3) + [frame(40 + i * 20, size=8) for i in range(5)])
    assert not any(r.active for r in res)
    gate = MotionGate(MotionConfig(min_area=0.0005, min_motion_frames=1))
    res = run(gate, static(3) + [frame(40 + i * 20, size=8) for i in range(5)])
    assert any(r.active for r in res[3:])


def test_mask_suppresses_motion_in_the_masked_area():
    # the box moves along y=140..200 (0.39..0.56); mask a band over the left two thirds of it
    band = Polygon(points=[[0.0, 0.3], [0.7, 0.3], [0.7, 0.7], [0.0, 0.7]])
    gate = MotionGate(MotionConfig(masks=[band], min_motion_frames=1))
    res = run(gate, static(3) + moving(10, x0=40, step=20))  # x 40..220 of 640: inside the mask
    assert not any(r.active for r in res)
    assert all(r.changed_fraction < 0.002 for r in res)
    res = run(gate, [frame(500 + i * 10) for i in range(4)], t0=10.0)  # x 500..590: outside the mask
    assert any(r.active for r in res)


def test_zones_require_motion_to_touch_a_zone():
    right = Zone(name="door", points=[[0.75, 0.0], [1.0, 0.0], [1.0, 1.0], [0.75, 1.0]])
    gate = MotionGate(MotionConfig(zones=[right], min_motion_frames=1))
    res = run(gate, static(3) + moving(6, x0=40, step=20))  # left part of the frame only
    assert not any(r.active for r in res)
    res = run(gate, [frame(440 + i * 30) for i in range(4)], t0=10.0)  # reaches x >= 480 (0.75)
    assert any(r.active for r in res)
    assert gate.zones_hit == ["door"]


@pytest.mark.parametrize("jump", ["gain_x3", "ir_gray"])
def test_global_lighting_change_rebaselines_without_motion(jump):
    dark = (BASE // 4).astype(np.uint8)
    if jump == "gain_x3":
        lit = cv2.convertScaleAbs(dark, alpha=3.0)
    else:  # IR cut filter: colour disappears and the IR illuminator brightens the scene
        lit = cv2.cvtColor(cv2.cvtColor(BASE, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    gate = MotionGate(MotionConfig(min_motion_frames=1))
    res = run(gate, [frame(base=dark) for _ in range(4)] + [frame(base=lit) for _ in range(6)])
    assert res[4].relit and not res[4].active and not res[4].started
    assert res[4].changed_fraction >= 0.6
    assert not any(r.active or r.started for r in res)
    assert not any(r.relit for r in res[5:])  # the new look is the background now


def test_lighting_jump_does_not_count_toward_min_motion_frames():
    gate = MotionGate(MotionConfig(min_motion_frames=2))
    lit = cv2.convertScaleAbs(BASE, alpha=1.8)
    res = run(gate, static(3) + [frame(100), frame(base=lit)])
    assert res[4].relit and not res[4].active
    res2 = run(gate, [frame(200, base=lit)], t0=1.0)
    assert not res2[0].active  # one motion frame after the jump: the streak started over


def test_reconfigure_applies_live_and_keeps_the_background():
    gate = MotionGate(MotionConfig(threshold=255, noise_factor=0, min_motion_frames=1))
    res = run(gate, static(3) + moving(3))
    assert not any(r.boxes for r in res)  # a fixed 255 never fires
    gate.reconfigure(MotionConfig(threshold=25, min_motion_frames=1))
    r = gate.update(frame(300), 1.0)
    assert r.active and r.started  # background kept: the very next frame can fire

    band = Polygon(points=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    gate.reconfigure(MotionConfig(threshold=25, min_motion_frames=1, masks=[band], off_delay_s=0.0))
    r = gate.update(frame(350), 1.1)
    assert not r.boxes and r.ended  # all masked now: quiet, and off delay 0 ends at once

    gate.reconfigure(MotionConfig(frame_height=90, min_motion_frames=1))
    r = gate.update(frame(400), 1.2)
    assert not r.boxes and gate.small.shape == (90, 160)  # new size: new background, no motion yet
    r = gate.update(frame(450), 1.3)
    assert r.boxes


def test_rebaseline_and_small_frame():
    gate = MotionGate(MotionConfig(min_motion_frames=1))
    big = scene(3, size=(1080, 1920))
    assert not gate.update(big, 0.0).boxes
    assert gate.small.shape == (180, 320) and gate.small.dtype == np.uint8
    moved = big.copy()
    cv2.rectangle(moved, (800, 400), (1000, 700), (255, 255, 255), -1)
    gate.rebaseline()
    assert not gate.update(moved, 0.1).boxes  # the first frame after rebaseline is the background
    assert not gate.update(moved, 0.2).boxes


def test_bad_input_is_a_clear_error():
    gate = MotionGate(MotionConfig())
    with pytest.raises(ValueError, match="uint8"):
        gate.update(np.zeros((10, 10, 3), np.float32), 0.0)
    with pytest.raises(ValueError, match="empty"):
        gate.update(np.zeros((0, 10, 3), np.uint8), 0.0)
    with pytest.raises(ValueError):
        gate.update(None, 0.0)  # type: ignore[arg-type]


def test_heavy_night_noise_alone_does_not_fire_at_1080p():
    cv2.setRNGSeed(11)
    dark = (scene(7, size=(1080, 1920)) // 5).astype(np.int16)
    noise = np.empty_like(dark)

    def noisy(box: int | None = None) -> np.ndarray:
        cv2.randn(noise, 0, 8)  # Gaussian sensor noise, sigma 8 on a dark scene
        img = cv2.add(dark, noise).clip(0, 255).astype(np.uint8)
        if box is not None:
            cv2.rectangle(img, (box, 400), (box + 200, 800), (90, 90, 90), -1)
        return img

    gate = MotionGate(MotionConfig(min_motion_frames=2))
    res = run(gate, [noisy() for _ in range(10)])
    assert not any(r.boxes or r.active for r in res)
    res = run(gate, [noisy(200 + 80 * i) for i in range(5)], t0=5.0)
    assert res[-1].active  # a dim person-sized region is still found through the noise


def test_gradual_brightness_ramp_does_not_fire_but_motion_during_it_does():
    dark = (BASE // 3).astype(np.uint8)
    ramp = [cv2.convertScaleAbs(dark, alpha=1.0 + 0.15 * i) for i in range(12)]  # x1 -> x2.65 over 12 frames
    gate = MotionGate(MotionConfig(min_motion_frames=2))
    res = run(gate, [frame(base=dark) for _ in range(3)] + [frame(base=b) for b in ramp])
    assert not any(r.active for r in res), [round(r.changed_fraction, 3) for r in res]

    gate = MotionGate(MotionConfig(min_motion_frames=2))
    res = run(
        gate, [frame(base=dark) for _ in range(3)] + [frame(60 + 30 * i, base=b) for i, b in enumerate(ramp)]
    )
    assert any(r.active for r in res)


# ---------------------------------------------------------------- night: noise-adaptive threshold

NIGHT_H, NIGHT_W = 720, 1280


def night_scene(mean_luma: float = 20.0) -> np.ndarray:
    """A textured scene (float) at night brightness."""
    base = scene(3, (NIGHT_H, NIGHT_W)).astype(np.float32)
    return base * (mean_luma / base.mean())


def night_frames(n: int, rng: np.random.Generator, sigma: float = 4.0, person_gain: float = 0.0,
                 sweep: bool = False, mean_luma: float = 20.0):
    """n noisy night frames; a person-sized region person_gain levels brighter walks across;
    sweep: a soft headlight band (x1 -> x2.5 brightness) sweeps across the scene instead."""
    base = night_scene(mean_luma)
    xs = np.arange(NIGHT_W, dtype=np.float32)
    for i in range(n):
        img = base.copy()
        if person_gain:
            x = 100 + 20 * i
            img[250:650, x : x + 130] += person_gain
        if sweep:
            cx = -300 + (NIGHT_W + 600) * i / max(n - 1, 1)
            band = 1.0 + 1.5 * np.exp(-(((xs - cx) / 180.0) ** 2))
            img *= band[None, :, None]
        img += rng.normal(0.0, sigma, img.shape).astype(np.float32)
        yield np.clip(img, 0, 255).astype(np.uint8)


def run_clip(cfg: MotionConfig, frames) -> list:
    gate = MotionGate(cfg)
    return [gate.update(f, i * DT) for i, f in enumerate(frames)]


def test_night_person_ten_levels_above_a_noisy_dark_background_fires_by_default():
    rng = np.random.default_rng(11)
    quiet = list(night_frames(20, rng))
    walking = list(night_frames(30, rng, person_gain=10.0))
    res = run_clip(MotionConfig(), quiet + walking)
    assert not any(r.active for r in res[:20])
    assert any(r.started for r in res[20:])
    # the old fixed threshold (25) is blind to it: that is what the adaptive threshold fixes
    old = run_clip(MotionConfig(noise_factor=0), quiet + walking)
    assert not any(r.active for r in old)


def test_night_noise_alone_and_a_headlight_sweep_raise_no_motion():
    rng = np.random.default_rng(12)
    cfg = MotionConfig()
    gate = MotionGate(cfg)
    res = [gate.update(f, i * DT) for i, f in enumerate(night_frames(60, rng, sigma=4.0))]
    assert not any(r.active for r in res)
    assert 3 <= gate.threshold <= 12  # adapted to the noise, far below the daytime 25
    sweep = list(night_frames(20, rng, sweep=True))
    res = [gate.update(f, 6.0 + i * DT) for i, f in enumerate(sweep)]
    assert not any(r.active for r in res)
    # without the relight test the same sweep is motion
    blind = MotionGate(MotionConfig(reject_lighting=False))
    for i, f in enumerate(night_frames(60, np.random.default_rng(12), sigma=4.0)):
        blind.update(f, i * DT)
    res = [blind.update(f, 6.0 + i * DT) for i, f in enumerate(sweep)]
    assert any(r.active for r in res)


def test_adaptive_threshold_stays_at_threshold_on_a_clean_bright_scene():
    gate = MotionGate(MotionConfig(threshold=25, noise_factor=5.0))
    for i in range(10):
        gate.update(BASE, i * DT)  # no noise at all
    assert gate.threshold == 4  # the floor: a clean static scene allows small differences
    gate = MotionGate(MotionConfig(threshold=25, noise_factor=5.0))
    rng = np.random.default_rng(1)
    for i in range(40):
        noisy = np.clip(BASE + rng.normal(0, 20, BASE.shape), 0, 255).astype(np.uint8)
        gate.update(noisy, i * DT)
    assert gate.threshold == 25  # very noisy: capped at threshold


def test_lights_on_with_more_noise_after_it_raises_no_motion():
    """The light jumps x3 and the noise with it (a brighter picture, a noisier one): the gate
    re-baselines and learns the new noise instead of firing on it with the dark scene's threshold."""
    rng = np.random.default_rng(21)
    dark = list(night_frames(40, rng, sigma=1.0, mean_luma=15.0))
    lit = list(night_frames(40, rng, sigma=5.0, mean_luma=45.0))
    res = run_clip(MotionConfig(), dark + lit)
    assert any(r.relit for r in res[40:43])
    assert not any(r.started for r in res)
