"""An INT8 file that computes differently on this CPU than its float original is not used: the loader
probes both and keeps the float file (ONNX Runtime's INT8 face SR once lost 15 dB on an AVX2-only CPU)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from fixtures.export_models import damage_int8_weights

from edge_agent.inference.int8_check import INT8_MIN_PSNR_DB, agreement_db, probe_feeds, probe_image
from edge_agent.inference.loader import load_model
from edge_agent.inference.manifest import load_manifest, sha256_file, write_manifest


@pytest.fixture
def models(repo_root):
    return repo_root / "models"


def _copy_with_broken_int8(models, tmp_path, name: str):
    """models/ with `name`'s ONNX Runtime INT8 file damaged (and its manifest hash updated, so only
    the probe can tell)."""
    manifest = load_manifest(models)
    entry = manifest.models[name]
    dest = tmp_path / "models"
    for art in entry.files.values():
        for rel in (art.path, art.bin):
            if rel:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(models / rel, dest / rel)
    broken = dest / entry.files["onnx_int8"].path
    damage_int8_weights(broken)
    entry.files["onnx_int8"].sha256 = sha256_file(broken)
    write_manifest(dest, manifest.model_copy(update={"models": {name: entry}}))
    return dest


@pytest.mark.parametrize("name", ["face_sr", "lowlight"])
def test_shipped_int8_files_agree_with_their_float_originals_and_are_used(models, name):
    for backend in ("onnxruntime", "openvino"):
        loaded = load_model(models, name, backend, "int8", threads=1)
        assert loaded.info.precision == "int8", backend


@pytest.mark.parametrize("name", ["face_sr", "lowlight"])
def test_an_int8_file_that_computes_wrong_here_is_replaced_by_the_float_file(models, tmp_path, caplog, name):
    bad_models = _copy_with_broken_int8(models, tmp_path, name)
    with caplog.at_level(logging.WARNING, logger="edge_agent.inference.loader"):
        loaded = load_model(bad_models, name, "onnxruntime", "int8", threads=1)
    assert loaded.info.precision == "fp32" and loaded.path.name == "model_fp32.onnx"
    assert "computes differently on this CPU" in caplog.text and "model_int8.onnx" in caplog.text
    # the other backend's INT8 file is untouched and still used
    assert load_model(bad_models, name, "openvino", "int8", threads=1).info.precision == "int8"


def test_probe_is_fixed_and_agreement_measures_the_difference():
    a, b = probe_image(32, dark=False), probe_image(32, dark=True)
    assert a.shape == (1, 3, 32, 32) and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    assert np.allclose(b * 5.0, a) and np.array_equal(a, probe_image(32, dark=False))
    feeds = probe_feeds("low_light", 16, ["image", "ratio"])
    assert feeds["image"].shape == (1, 3, 64, 64) and feeds["ratio"].shape == (1, 1)
    assert probe_feeds("face_sr", 1, ["image"]).keys() == {"image"}

    class Fixed:
        def __init__(self, offset):
            self.offset = offset

        def run(self, feeds):
            return {"output": feeds["image"] + self.offset}

    assert agreement_db(Fixed(0.0), Fixed(0.0), feeds) == 100.0
    assert agreement_db(Fixed(0.0), Fixed(0.1), feeds) == pytest.approx(20.0, abs=0.01)
    assert 20.0 < INT8_MIN_PSNR_DB
    close = agreement_db(Fixed(0.0), Fixed(0.01), feeds)
    assert close == pytest.approx(40.0, abs=0.01) and close > INT8_MIN_PSNR_DB
