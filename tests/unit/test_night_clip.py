"""The night clip generator: ground truth that matches the pictures, the stated luma look, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data
from fixtures.video import read_frames

from edge_agent.sim.night_clip import ClipSpec, ClipTruth, Person, write_clip

ASTRO = skimage.data.astronaut()[:300, 80:380].astype(np.float32) / 255.0
ASTRO_FACE = (98, 74, 83, 83)  # the face in that crop


def person(**kw) -> Person:
    args = dict(identity="astronaut", face_rgb=ASTRO, face_box=ASTRO_FACE, face_px=40, enter_s=0.5, leave_s=2.5)
    args.update(kw)
    return Person(**args)


def test_luma_look_has_the_stated_brightness_noise_and_person_contrast(tmp_path):
    spec = ClipSpec(name="m", scene_rgb=skimage.data.coffee(), width=640, height=360, seconds=3.0,
                    people=[person(face_px=30, feet_y=0.95)], look="luma", luma_mean=20.0, luma_delta=12.0,
                    luma_sigma=3.0, seed=1, crf=12)
    truth = write_clip(spec, tmp_path / "m.mp4")
    assert truth.frames == 30 and len(read_frames(truth.path)) == 30
    assert truth.passes == [{"identity": "astronaut", "first": truth.passes[0]["first"], "last": truth.passes[0]["last"]}]
    first, last = truth.passes[0]["first"], truth.passes[0]["last"]
    assert 5 <= first <= 8 and 22 <= last <= 26  # in view between enter_s and leave_s
    vid = read_frames(truth.path)
    empty = vid[0][:, :, 1].astype(np.float32)
    assert abs(empty.mean() - 20.0) < 2.0
    # where the ground truth puts the face, the picture is brighter than the empty frame by ~delta
    fr = sorted(truth.faces)[len(truth.faces) // 2]
    x, y, w, h = truth.faces[fr][0]["box"]
    diff = vid[fr - 1][y : y + h, x : x + w, 1].astype(np.float32) - empty[y : y + h, x : x + w]
    assert 8.0 < float(diff.mean()) < 16.0
    # noise: two empty frames differ by about sqrt(2) sigma (before compression smooths a little)
    d = vid[0][:, :, 1].astype(np.float32) - vid[1][:, :, 1].astype(np.float32)
    assert 1.5 < float(d.std()) < 3.0 * np.sqrt(2) + 0.5


def test_clean_look_face_box_lands_on_the_face_and_truth_round_trips(tmp_path):
    spec = ClipSpec(name="c", scene_rgb=skimage.data.rocket(), width=640, height=360, seconds=2.0,
                    people=[person(face_px=60, enter_s=0.0, leave_s=2.0)], look="clean", seed=3, crf=12)
    truth = write_clip(spec, tmp_path / "c.mp4")
    again = ClipTruth.from_json((tmp_path / "c.mp4.json").read_text())
    assert again == truth
    fr = sorted(truth.faces)[len(truth.faces) // 2]
    x, y, w, h = truth.faces[fr][0]["box"]
    assert w == 60 and 55 <= h <= 65
    img = read_frames(truth.path)[fr - 1][:, :, ::-1]
    src = cv2.resize(ASTRO[74:157, 98:181], (w, h), interpolation=cv2.INTER_AREA)
    got = img[y : y + h, x : x + w].astype(np.float32) / 255.0
    assert np.abs(got - src).mean() < 0.06  # the pasted face is where the truth says
    # same spec, same seed: the same clip
    again = write_clip(spec, tmp_path / "c2.mp4")
    assert again.faces == truth.faces and again.passes == truth.passes
