"""Light on the scene is not motion: headlight sweeps over camera-rendered night scenes, a lamp that
stays on, and the people the gate must still see in that light (edge_agent.motion.lighting)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
from fixtures.video import read_frames

from edge_agent.config.schema import MotionConfig
from edge_agent.motion import lighting
from edge_agent.motion.gate import MotionGate
from edge_agent.sim import camera
from edge_agent.sim.night_clip import ClipSpec, Person, write_clip

ASTRO = skimage.data.astronaut()[:300, 80:380].astype(np.float32) / 255.0
ASTRO_FACE = (98, 74, 83, 83)


def night_clip(tmp_path, scene, seed: int, events, people=()) -> tuple[list[np.ndarray], object]:
    params = camera.sample_params(np.random.default_rng(seed), exposure=(0.03, 0.08), jpeg_quality=None)
    spec = ClipSpec(name=f"hl{seed}", scene_rgb=scene, width=640, height=360, seconds=7.0, camera=params,
                    events=list(events), people=list(people), seed=seed, crf=20)
    truth = write_clip(spec, tmp_path / f"hl{seed}.mp4")
    return read_frames(truth.path), truth


def gate_run(frames, cfg: MotionConfig | None = None):
    gate = MotionGate(cfg or MotionConfig())
    return [gate.update(f, i * 0.1) for i, f in enumerate(frames)]


@pytest.mark.parametrize("scene,seed", [("rocket", 3), ("coffee", 8), ("chelsea", 21)])
def test_headlight_sweeps_over_a_camera_rendered_night_scene_raise_no_event(tmp_path, scene, seed):
    frames, _ = night_clip(tmp_path, getattr(skimage.data, scene)(), seed, [("headlight", 1.5), ("headlight", 4.0)])
    res = gate_run(frames)
    assert not any(r.started for r in res), [i for i, r in enumerate(res) if r.boxes]
    # the sweep is strong change: with the light test off it is motion
    assert any(r.started for r in gate_run(frames, MotionConfig(reject_lighting=False)))


def test_a_person_walking_through_a_headlight_sweep_still_raises_the_event(tmp_path):
    walker = Person(identity="astronaut", face_rgb=ASTRO, face_box=ASTRO_FACE, face_px=40, enter_s=1.0,
                    leave_s=6.0, feet_y=0.95)
    frames, truth = night_clip(tmp_path, skimage.data.rocket(), 5, [("headlight", 2.5)], [walker])
    res = gate_run(frames)
    first = truth.passes[0]["first"]
    started = [i + 1 for i, r in enumerate(res) if r.started]
    assert started and first <= started[0] <= first + 15
    # while the beam crosses (frames 26-40) the person is still boxed
    boxed = [i + 1 for i in range(25, 40) if res[i].boxes]
    assert len(boxed) >= 10


def lamp_frames(n: int, rng, on_at: int, walk_from: int | None = None) -> list[np.ndarray]:
    """A dark textured scene; a lamp lights a soft pool (x2.5 at its centre) from frame on_at on and
    stays on; from walk_from a person-sized region 15 levels brighter walks into the pool."""
    base = cv2.resize(np.random.default_rng(2).integers(10, 40, (45, 80, 3)).astype(np.float32), (1280, 720))
    ys, xs = np.mgrid[0:720, 0:1280].astype(np.float32)
    pool = 1.0 + 1.5 * np.exp(-(((xs - 800) / 200.0) ** 2 + ((ys - 400) / 160.0) ** 2))
    out = []
    for i in range(n):
        img = base.copy()
        if i >= on_at:
            img *= pool[..., None]
        if walk_from is not None and i >= walk_from:
            x = 300 + 25 * (i - walk_from)
            img[250:650, x : x + 130] += 15.0
        img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def test_a_lamp_switched_on_is_no_motion_and_a_person_in_its_light_is_seen_after():
    rng = np.random.default_rng(4)
    res = gate_run(lamp_frames(60, rng, on_at=20))
    assert not any(r.started for r in res)  # the lamp: no event, the background learns its light
    res = gate_run(lamp_frames(100, rng, on_at=20, walk_from=70))
    assert not any(r.started for r in res[:70])
    assert any(r.started for r in res[70:])


def test_soft_edge_tells_a_fading_light_from_a_solid_silhouette():
    ys, xs = np.mgrid[0:120, 0:160].astype(np.float32)
    thr = 6.0
    beam = 30.0 * np.exp(-((xs - 80) / 25.0) ** 2)  # falls below the threshold gradually
    solid = np.where((abs(xs - 80) < 30) & (abs(ys - 60) < 40), 12.0, 0.0).astype(np.float32)
    for d, want_soft in ((beam.astype(np.float32), True), (solid, False)):
        changed = (np.abs(d) > thr).astype(np.uint8) * 255
        grown = cv2.dilate(changed, np.ones((3, 3), np.uint8), iterations=lighting.GROW)
        soft = lighting.soft_edge(d, grown, changed, thr, 1.0)
        assert soft is not None and (soft >= lighting.SOFT_EDGE) == want_soft, soft
