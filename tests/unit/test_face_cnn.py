"""The shipped CNN face detector: finds real faces, falls back to LBP on a missing or corrupt model."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from edge_agent.config.schema import FacesConfig
from edge_agent.enhance.faces import FaceDetector
from edge_agent.inference.loader import default_models_dir

MODELS = default_models_dir()
SHARED_FACES = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dev_faces"


def test_cnn_detector_finds_the_astronaut_face_where_lbp_is_the_fallback():
    det = FaceDetector(FacesConfig(detector="cnn"), MODELS)
    assert det.kind == "cnn" and det.fallback_error is None
    bgr = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    boxes = det.detect(bgr)
    assert boxes, "no face in scikit-image's astronaut"
    x, y, w, h, score = boxes[0]
    # the face lies around x 178-261, y 74-157 in that photo
    assert abs((x + w / 2) - 220) < 30 and abs((y + h / 2) - 115) < 35 and score >= 0.5


@pytest.mark.needs_shared
def test_cnn_detector_finds_a_face_in_every_dev_face_photo():
    if not SHARED_FACES.is_dir():
        pytest.skip("shared dev_faces not present")
    det = FaceDetector(FacesConfig(detector="cnn"), MODELS)
    missed = [p.name for p in sorted(SHARED_FACES.glob("*.png")) if not det.detect(cv2.imread(str(p)))]
    assert missed == []


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_detector_model_is_named_and_lbp_takes_over(tmp_path, caplog, damage):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    victims = sorted((models / "face_detector").rglob("*.onnx")) + sorted((models / "face_detector").rglob("*.bin"))
    assert victims
    for f in victims:
        if damage == "missing":
            f.unlink()
        else:
            f.write_bytes(b"not a model" * 10)
    with caplog.at_level(logging.ERROR):
        det = FaceDetector(FacesConfig(detector="cnn"), models)
    assert det.kind == "lbp" and det.fallback_error
    assert "face_detector" in det.fallback_error  # the file is named
    assert any("LBP cascade takes over" in r.getMessage() for r in caplog.records)
    det.detect(np.zeros((120, 160, 3), np.uint8))  # and it still works


def test_person_shaped_motion_box_is_searched_in_its_head_band_only():
    from edge_agent.enhance.faces import plan_search

    cfg = FacesConfig()
    W, H = 1280, 720
    person = (0.40, 0.25, 0.14, 0.60)  # 179 x 432 px: a person
    (x0, y0, x1, y1, _s), = plan_search(cfg, W, H, [person])
    top, bottom = int(0.25 * H), int(0.85 * H)
    assert y0 < top and y1 < top + 0.7 * (bottom - top)  # reaches above the head, stops at the belly
    assert (x1 - x0) * (y1 - y0) < 0.25 * (W * H)
    whole, = plan_search(cfg.model_copy(update={"head_band": 1.0}), W, H, [person])
    assert whole[3] >= bottom  # head_band 1.0: the whole grown box
    car = (0.30, 0.60, 0.30, 0.15)  # wider than tall: searched whole and grown
    (cx0, cy0, cx1, cy1, _), = plan_search(cfg, W, H, [car])
    assert cy1 >= int(0.75 * H) and cx0 < int(0.30 * W) and cx1 > int(0.60 * W)


def test_face_in_the_head_band_of_a_motion_box_is_found_by_the_cnn():
    det = FaceDetector(FacesConfig(), default_models_dir())
    assert det.kind == "cnn"
    frame = np.full((720, 1280, 3), 40, np.uint8)
    face = cv2.cvtColor(skimage.data.astronaut()[30:250, 140:340], cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (100, 110))
    frame[200:310, 520:620] = face
    found = det.detect(frame, [(0.39, 0.26, 0.14, 0.62)])  # the body below the face
    assert any(abs(x + w / 2 - 570) < 30 and abs(y + h / 2 - 255) < 30 for x, y, w, h, _ in found)


def test_brighten_to_mid_lifts_a_dark_crop_and_leaves_a_bright_one():
    from edge_agent.enhance.faces import MID_GRAY, brighten_to_mid

    face = cv2.cvtColor(skimage.data.astronaut()[30:250, 140:340], cv2.COLOR_RGB2BGR)
    dark = (face.astype(np.float32) * 0.08).astype(np.uint8)
    lifted = brighten_to_mid(dark)
    assert abs(lifted.mean() / 255.0 - MID_GRAY) < 0.08
    assert np.corrcoef(lifted.ravel(), face.ravel())[0, 1] > 0.8  # the same picture, only brighter
    bright = np.full((20, 20, 3), 200, np.uint8)
    assert np.array_equal(brighten_to_mid(bright), bright)
