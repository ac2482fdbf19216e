"""Inference layer: real ONNX Runtime and OpenVINO runs on the tiny fixture models."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from fixtures.tiny_models import build_tiny_models

from edge_agent.inference import loader
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import default_models_dir, load_model
from edge_agent.inference.onnxruntime_runner import OrtRunner
from edge_agent.inference.openvino_runner import OpenVinoRunner


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def models_copy(models_dir, tmp_path) -> Path:
    """A private copy to break on purpose."""
    return Path(shutil.copytree(models_dir, tmp_path / "models"))


def _feeds(h=13, w=17, ratio=5.0):
    rng = np.random.default_rng(3)
    return {
        "image": rng.uniform(0, 0.3, (1, 3, h, w)).astype(np.float32),
        "ratio": np.array([[ratio]], dtype=np.float32),
    }


def _manifest(models_dir: Path) -> dict:
    return yaml.safe_load((models_dir / "manifest.yaml").read_text())


def test_ort_fp32_matches_onnx_reference_evaluator(models_dir):
    from onnx.reference import ReferenceEvaluator

    path = models_dir / _manifest(models_dir)["models"]["lowlight"]["files"]["onnx_fp32"]["path"]
    feeds = _feeds()
    expected = ReferenceEvaluator(str(path)).run(None, feeds)[0]
    got = OrtRunner(path).run(feeds)["output"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.mean() > feeds["image"].mean() * 1.5  # ratio 5 brightens


@pytest.mark.parametrize("precision, atol", [("fp32", 2e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("name", ["lowlight", "face_sr"])
def test_both_backends_give_the_same_numbers(models_dir, name, precision, atol):
    ort_m = load_model(models_dir, name, backend="onnxruntime", precision=precision)
    ov_m = load_model(models_dir, name, backend="openvino", precision=precision)
    feeds = _feeds(h=11, w=20)
    if name == "face_sr":
        feeds = {"image": feeds["image"]}
    a = ort_m.runner.run(feeds)["output"]
    b = ov_m.runner.run(feeds)["output"]
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=atol)


def test_int8_stays_close_to_fp32(models_dir):
    feeds = _feeds()
    fp32 = load_model(models_dir, "lowlight", backend="onnxruntime", precision="fp32").runner.run(feeds)
    int8 = load_model(models_dir, "lowlight", backend="onnxruntime", precision="int8").runner.run(feeds)
    assert np.abs(fp32["output"] - int8["output"]).max() < 0.03


def test_runner_specs_report_names_and_dynamic_dims(models_dir):
    for backend in ("onnxruntime", "openvino"):
        r = load_model(models_dir, "lowlight", backend=backend, precision="fp32").runner
        assert r.backend == backend
        assert [s.name for s in r.inputs] == ["image", "ratio"]
        assert [s.name for s in r.outputs] == ["output"]
        image = r.inputs[0]
        assert image.dtype == "float32" and image.shape[:2] == (1, 3)
        assert not isinstance(image.shape[2], int)  # dynamic H


def test_static_shapes_compute_as_dynamic_and_keep_the_most_recent(models_dir):
    path = models_dir / "lowlight/0.0.1-tiny/lowlight_fp16.xml"
    dynamic = OpenVinoRunner(path, precision_hint="f32")
    static = OpenVinoRunner(path, precision_hint="f32", static_shapes=2)
    assert static.compiled_shapes == []
    for h, w in [(16, 32), (32, 48), (16, 32), (48, 16), (32, 48)]:
        feeds = _feeds(h=h, w=w)
        np.testing.assert_allclose(static.run(feeds)["output"], dynamic.run(feeds)["output"], atol=1e-5)
    # (16, 32) was the least recently used when (32, 48) came back: released
    assert [dict(k)["image"][2:] for k in static.compiled_shapes] == [(48, 16), (32, 48)]
    assert dynamic.compiled_shapes == []  # a dynamic runner compiles nothing per shape


def test_static_shape_the_model_cannot_take_is_a_model_error(models_dir):
    runner = OpenVinoRunner(models_dir / "lowlight/0.0.1-tiny/lowlight_fp16.xml", static_shapes=1)
    feeds = _feeds()
    feeds["image"] = np.zeros((1, 5, 16, 16), np.float32)
    with pytest.raises(ModelError, match=r"cannot be compiled for input shapes .*'image': \(1, 5, 16, 16\)"):
        runner.run(feeds)


def test_agent_runs_openvino_files_with_the_loader_options(models_dir):
    ll_int8 = load_model(models_dir, "lowlight", backend="openvino", precision="int8").runner
    ll_fp32 = load_model(models_dir, "lowlight", backend="openvino", precision="fp32").runner
    sr_int8 = load_model(models_dir, "face_sr", backend="openvino", precision="int8").runner
    # frames come in a few sizes: static; face crops in many: dynamic
    assert (ll_int8.static_shapes, ll_fp32.static_shapes, sr_int8.static_shapes) == (3, 3, 0)
    # INT8 at the CPU's default precision (what verify gates), the float file pinned to f32
    assert (ll_int8.precision_hint, ll_fp32.precision_hint, sr_int8.precision_hint) == (None, "f32", None)
    # the load-time agreement check already compiled its probe shape
    assert len(ll_int8.compiled_shapes) == 1


def test_auto_prefers_openvino_and_falls_back_to_onnxruntime(models_dir, monkeypatch):
    m = load_model(models_dir, "lowlight")
    assert m.info.backend == "openvino" and m.info.precision == "int8"
    assert m.path.name == "lowlight_int8.xml"
    monkeypatch.setattr(loader, "openvino_available", lambda: False)
    m = load_model(models_dir, "lowlight", precision="fp32")
    assert (m.info.backend, m.info.precision, m.path.name) == ("onnxruntime", "fp32", "lowlight_fp32.onnx")
    assert m.info.name == "lowlight" and m.info.version == "0.0.1-tiny"


def test_absent_artifact_kind_falls_back_and_says_so(models_copy, caplog):
    data = _manifest(models_copy)
    del data["models"]["lowlight"]["files"]["onnx_int8"]
    (models_copy / "manifest.yaml").write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING, logger="edge_agent.inference.loader"):
        m = load_model(models_copy, "lowlight", backend="onnxruntime", precision="int8")
    assert m.path.name == "lowlight_fp32.onnx" and m.info.precision == "fp32"
    assert "onnx_int8 is not in the manifest" in caplog.text


def test_missing_file_error_names_it(models_copy):
    (models_copy / "lowlight/0.0.1-tiny/lowlight_int8.onnx").unlink()
    with pytest.raises(ModelError, match=r"lowlight_int8\.onnx is missing"):
        load_model(models_copy, "lowlight", backend="onnxruntime")


@pytest.mark.parametrize("rel", ["lowlight/0.0.1-tiny/lowlight_int8.onnx", "lowlight/0.0.1-tiny/lowlight_int8.bin"])
def test_corrupt_file_error_names_it(models_copy, rel):
    path = models_copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    backend = "openvino" if rel.endswith(".bin") else "onnxruntime"
    with pytest.raises(ModelError, match=rf"{Path(rel).name} is corrupt"):
        load_model(models_copy, "lowlight", backend=backend)


def test_unknown_model_lists_known_ones(models_dir):
    with pytest.raises(ModelError, match=r"'nope' is not in .*known models: face_sr, lowlight"):
        load_model(models_dir, "nope")


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ModelError, match=r"manifest\.yaml cannot be read"):
        load_model(tmp_path, "lowlight")


def test_manifest_io_names_must_match_the_file(models_copy):
    data = _manifest(models_copy)
    data["models"]["face_sr"]["inputs"][0]["name"] = "pixels"
    (models_copy / "manifest.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=r"face_sr_int8\.onnx does not match its manifest entry.*pixels"):
        load_model(models_copy, "face_sr", backend="onnxruntime")


def test_unloadable_files_raise_model_error_naming_them(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"garbage\.onnx cannot be loaded by ONNX Runtime"):
        OrtRunner(bad)
    xml = tmp_path / "garbage.xml"
    xml.write_text("<net>")
    with pytest.raises(ModelError, match=r"garbage\.xml cannot be loaded by OpenVINO"):
        OpenVinoRunner(xml)
    with pytest.raises(ModelError, match=r"absent\.xml is missing"):
        OpenVinoRunner(tmp_path / "absent.xml")


def test_bad_feed_raises_model_error_naming_file(models_dir):
    for backend in ("onnxruntime", "openvino"):
        m = load_model(models_dir, "face_sr", backend=backend)
        with pytest.raises(ModelError, match=str(m.path.name)):
            m.runner.run({"wrong": np.zeros((1, 3, 4, 4), np.float32)})


def test_threads_and_precision_hint_are_accepted(models_dir):
    path = models_dir / "lowlight/0.0.1-tiny/lowlight_fp16.xml"
    r = OpenVinoRunner(path, threads=1, precision_hint="f32")
    assert r.run(_feeds())["output"].shape == (1, 3, 13, 17)
    assert OrtRunner(models_dir / "lowlight/0.0.1-tiny/lowlight_fp32.onnx", threads=1).run(_feeds())


def test_default_models_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("NIGHTWATCH_MODELS", raising=False)
    assert default_models_dir() == Path(loader.__file__).resolve().parents[2] / "models"
    monkeypatch.setenv("NIGHTWATCH_MODELS", str(tmp_path))
    assert default_models_dir() == tmp_path


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_runner_is_safe_to_share_between_worker_threads(models_dir, backend):
    from concurrent.futures import ThreadPoolExecutor

    runner = load_model(models_dir, "lowlight", backend=backend, precision="fp32").runner
    inputs = [_feeds(h=8 + i, w=9 + 2 * i, ratio=1.0 + i) for i in range(8)]
    expected = [runner.run(f)["output"] for f in inputs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda f: runner.run(f)["output"], inputs * 3))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, expected[i % len(inputs)])
