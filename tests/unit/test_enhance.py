"""Enhancement stages and `edge-agent enhance` on the tiny fixture models (real inference)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from fixtures.tiny_models import LOWLIGHT_PAD, SR_SCALE, build_tiny_models

from edge_agent.cli import main as cli_main
from edge_agent.config.schema import FacesConfig
from edge_agent.enhance import face_sr as face_sr_mod
from edge_agent.enhance.face_sr import FaceSuperResolver
from edge_agent.enhance.faces import FaceDetector, crop_with_margin
from edge_agent.enhance.low_light import LowLightEnhancer, is_dark
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import load_model

ASTRONAUT_FACE = (178, 74, 83, 83)  # x, y, w, h of the face in skimage.data.astronaut()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


def _iou(a, b) -> float:
    ax, ay, aw, ah = a[:4]
    bx, by, bw, bh = b[:4]
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


class _Spy:
    """Wraps a real runner and records the input shapes it was fed."""

    def __init__(self, runner):
        self.inner, self.shapes = runner, []
        self.backend = runner.backend
        self.inputs, self.outputs = runner.inputs, runner.outputs

    def run(self, feeds):
        self.shapes.append({k: v.shape for k, v in feeds.items()})
        return self.inner.run(feeds)


# ----------------------------------------------------------------------------- low light


def test_is_dark():
    assert is_dark(np.full((40, 40, 3), 20, np.uint8), 70.0)
    assert not is_dark(np.full((40, 40, 3), 120, np.uint8), 70.0)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("h, w", [(37, 53), (1, 1), (64, 48)])
def test_low_light_keeps_size_and_pads_to_the_model_multiple(models_dir, backend, h, w):
    model = load_model(models_dir, "lowlight", backend=backend, precision="fp32")
    spy = _Spy(model.runner)
    model.runner = spy
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    out = LowLightEnhancer(model).enhance(dark, ratio=5.0)
    assert out.shape == dark.shape and out.dtype == np.uint8
    fed = spy.shapes[0]["image"]
    assert fed[2] % LOWLIGHT_PAD == 0 and fed[3] % LOWLIGHT_PAD == 0 and fed[2] >= h and fed[3] >= w
    assert spy.shapes[0]["ratio"] == (1, 1)
    # the tiny model is per-pixel, so padding must not change the real pixels
    expected = model.runner.inner.run(
        {"image": dark[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255,
         "ratio": np.array([[5.0]], np.float32)}
    )["output"]
    ref = np.clip(expected[0].transpose(1, 2, 0)[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_low_light_ratio_controls_brightness(models_dir):
    enh = LowLightEnhancer(load_model(models_dir, "lowlight", backend="onnxruntime"))
    dark = np.full((30, 30, 3), 30, np.uint8)
    means = [enh.enhance(dark, r).mean() for r in (1.0, 5.0, 10.0)]
    assert dark.mean() < means[0] < means[1] < means[2]


def test_low_light_rejects_a_model_without_image_input(models_dir):
    model = load_model(models_dir, "lowlight", backend="onnxruntime")
    model.entry = model.entry.model_copy(update={"inputs": [model.entry.inputs[1]]})
    with pytest.raises(ModelError, match="no 4-D image input"):
        LowLightEnhancer(model)


# ----------------------------------------------------------------------------- face SR


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_face_sr_output_is_scale_times_larger_and_keeps_content(models_dir, backend, astronaut):
    sr = FaceSuperResolver(load_model(models_dir, "face_sr", backend=backend, precision="fp32"))
    assert sr.scale == SR_SCALE
    x, y, w, h = ASTRONAUT_FACE
    face = astronaut[y : y + h, x : x + w]
    up = sr.upscale(face)
    assert up.shape == (h * SR_SCALE, w * SR_SCALE, 3) and up.dtype == np.uint8
    down = cv2.resize(up, (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(down.astype(int) - face.astype(int)).mean() < 8  # same picture, slightly tinted


def test_face_sr_tiles_match_a_single_pass(models_dir):
    model = load_model(models_dir, "face_sr", backend="onnxruntime", precision="fp32")
    img = np.random.default_rng(1).integers(0, 256, (70, 101, 3), dtype=np.uint8)
    whole = FaceSuperResolver(model, tile=512).upscale(img)
    spy = _Spy(model.runner)
    model.runner = spy
    tiled = FaceSuperResolver(model, tile=32, overlap=4).upscale(img)
    assert len(spy.shapes) > 1  # really tiled
    assert all(max(s["image"][2:]) <= 32 for s in spy.shapes)
    np.testing.assert_array_equal(tiled, whole)


def test_face_sr_refuses_huge_images(models_dir, monkeypatch):
    sr = FaceSuperResolver(load_model(models_dir, "face_sr", backend="onnxruntime"))
    monkeypatch.setattr(face_sr_mod, "MAX_INPUT_PIXELS", 100)
    with pytest.raises(ValueError, match="too large to super-resolve"):
        sr.upscale(np.zeros((20, 20, 3), np.uint8))


# ----------------------------------------------------------------------------- faces


def test_lbp_detector_finds_the_astronaut_face(astronaut):
    boxes = FaceDetector(FacesConfig()).detect(astronaut)
    assert boxes, "no face found"
    assert max(_iou(b, ASTRONAUT_FACE) for b in boxes) > 0.6
    assert all(b[2] >= 24 and b[3] >= 24 for b in boxes)
    one = FaceDetector(FacesConfig(max_faces=1)).detect(astronaut)
    assert len(one) == 1 and _iou(one[0], ASTRONAUT_FACE) > 0.6  # the largest first
    big = FaceDetector(FacesConfig(min_size=100)).detect(astronaut)
    assert all(b[2] >= 100 and b[3] >= 100 for b in big)
    assert FaceDetector(FacesConfig(min_size=300)).detect(astronaut) == []
    assert FaceDetector(FacesConfig(max_faces=0)).detect(astronaut) == []


def test_lbp_detector_finds_nothing_in_flat_gray():
    assert FaceDetector(FacesConfig()).detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert FaceDetector(FacesConfig()).detect(np.full((10, 10, 3), 128, np.uint8)) == []


def test_detect_in_regions_searches_only_there(astronaut):
    det = FaceDetector(FacesConfig())
    # a motion box on the head (normalized): the face is found, in full-frame coordinates
    near = det.detect(astronaut, regions=[(0.36, 0.16, 0.12, 0.12), (0.37, 0.17, 0.1, 0.1)])
    assert near and _iou(near[0], ASTRONAUT_FACE) > 0.6
    # a motion box in the bottom-left corner: the face is not searched for
    far = det.detect(astronaut, regions=[(0.0, 0.85, 0.1, 0.1)])
    assert all(_iou(b, ASTRONAUT_FACE) == 0 for b in far)


def test_yunet_model_file_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match=r"yunet\.onnx is missing"):
        FaceDetector(FacesConfig(detector="yunet", yunet_model=tmp_path / "yunet.onnx"))
    bad = tmp_path / "bad_yunet.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match=r"bad_yunet\.onnx cannot be loaded"):
        FaceDetector(FacesConfig(detector="yunet", yunet_model=bad))


def test_crop_with_margin_grows_and_clips():
    img = np.arange(100 * 80 * 3, dtype=np.uint32).reshape(100, 80, 3).astype(np.uint8)
    crop, box = crop_with_margin(img, (20, 30, 20, 10, 0.9), 0.5)
    assert box == (10, 25, 40, 20) and crop.shape == (20, 40, 3)
    np.testing.assert_array_equal(crop, img[25:45, 10:50])
    crop, box = crop_with_margin(img, (70, 90, 20, 20), 0.25)  # runs off the bottom-right
    assert box == (65, 85, 15, 15) and crop.shape == (15, 15, 3)
    with pytest.raises(ValueError, match="outside"):
        crop_with_margin(img, (200, 200, 10, 10), 0.0)


# ----------------------------------------------------------------------------- CLI


def _write(path: Path, img: np.ndarray) -> Path:
    cv2.imwrite(str(path), img)
    return path


def test_cli_low_light_writes_same_named_pngs_and_reports_bad_files(models_dir, tmp_path, capsys):
    rng = np.random.default_rng(2)
    a = _write(tmp_path / "night_a.jpg", rng.integers(0, 40, (45, 61, 3), dtype=np.uint8))
    b = _write(tmp_path / "night_b.png", rng.integers(0, 40, (32, 32, 3), dtype=np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    rc = cli_main(["enhance", "--low-light", str(a), str(broken), str(missing), str(b),
                   "--out", str(out), "--models", str(models_dir), "--ratio", "8"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "missing.jpg" in err and "night_a" not in err
    assert sorted(p.name for p in out.iterdir()) == ["night_a.png", "night_b.png"]
    res = cv2.imread(str(out / "night_a.png"))
    assert res.shape == (45, 61, 3) and res.mean() > cv2.imread(str(a)).mean() * 1.5


def test_cli_super_resolve_and_exit_zero(models_dir, tmp_path):
    a = _write(tmp_path / "a.png", np.full((20, 30, 3), 90, np.uint8))
    rc = cli_main(["enhance", "--super-resolve", str(a), "--out", str(tmp_path / "o"),
                   "--models", str(models_dir), "--backend", "onnxruntime"])
    assert rc == 0
    assert cv2.imread(str(tmp_path / "o" / "a.png")).shape == (80, 120, 3)


def test_cli_faces_writes_super_resolved_crops(models_dir, tmp_path, astronaut, capsys):
    dark = _write(tmp_path / "dark_astro.png", (astronaut * 0.25).astype(np.uint8))
    gray = _write(tmp_path / "wall.png", np.full((120, 160, 3), 128, np.uint8))
    rc = cli_main(["enhance", "--faces", str(dark), str(gray), "--out", str(tmp_path / "f"),
                   "--models", str(models_dir)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dark_astro.png" in out and "wall.png: 0 face(s)" in out
    crops = sorted((tmp_path / "f").glob("dark_astro_face*.png"))
    assert crops and not list((tmp_path / "f").glob("wall*"))
    first = cv2.imread(str(crops[0]))
    assert first.shape[0] >= 83 * SR_SCALE and first.shape[0] % SR_SCALE == 0


def test_cli_rejects_bad_ratio(models_dir, tmp_path, capsys):
    a = _write(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    rc = cli_main(["enhance", "--low-light", str(a), "--out", str(tmp_path / "o"), "--models", str(models_dir),
                   "--ratio", "-3"])
    assert rc == 2 and "--ratio -3" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_model_error_exits_2(tmp_path, capsys):
    a = _write(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    rc = cli_main(["enhance", "--low-light", str(a), "--out", str(tmp_path / "o"), "--models", str(tmp_path)])
    assert rc == 2
    assert "manifest.yaml" in capsys.readouterr().err
