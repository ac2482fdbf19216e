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
