"""ONNX export: names, dynamic H/W, an IR version ONNX Runtime accepts, parity with PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from fixtures.export_models import TinyLowLight, TinySR, real_crops, seeded

from export_tools.export.onnx import IR_VERSION, ExportError, ExportInfo, export_model, sample_inputs
from export_tools.export.tasks import TASKS, task_for_arch


def test_lowlight_export_names_dynamic_shapes_and_parity(tmp_path):
    model = seeded(TinyLowLight())
    feeds = [sample_inputs(TASKS["low_light"], c * 0.2, ratio=4.0) for c in real_crops(2, 48)]
    info = export_model(model, "kind_enhancer", tmp_path, parity_feeds=feeds)
    proto = onnx.load(str(tmp_path / "model_fp32.onnx"))
    assert proto.ir_version <= IR_VERSION
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == ["image", "ratio"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert info.parity_max_abs < 1e-4 and info.parity_psnr_db > 60
    assert info.pad_multiple == 4 and info.scale == 1
    # a different (non-square) size runs through the same graph and still matches PyTorch
    sess = ort.InferenceSession(str(tmp_path / "model_fp32.onnx"), providers=["CPUExecutionProvider"])
    x = real_crops(1, 64)[0][:, :, :40, :] * 0.3
    r = np.full((1, 1), 2.5, np.float32)
    got = sess.run(None, {"image": x, "ratio": r})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(r)).numpy()
    assert got.shape == (1, 3, 40, 64)
    assert np.abs(got - ref).max() < 1e-4
    assert ExportInfo.load(tmp_path).arch == "kind_enhancer"


def test_sr_export_scales_output(tmp_path):
    model = seeded(TinySR())
    info = export_model(model, "srgan_generator", tmp_path, parity_feeds=[{"image": real_crops(1, 24)[0]}])
    assert info.scale == 4 and info.parity_max_abs < 1e-4
    sess = ort.InferenceSession(str(tmp_path / "model_fp32.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert sess.run(None, {"image": real_crops(1, 20)[0]})[0].shape == (1, 3, 80, 80)


def test_parity_failure_is_reported(tmp_path):
    class Drifting(torch.nn.Module):  # PyTorch output differs from what gets traced, on purpose
        scale = 4

        def __init__(self):
            super().__init__()
            self.inner = seeded(TinySR())
            self.calls = 0

        def forward(self, image):
            self.calls += 1
            return self.inner(image) + (0.0 if self.calls == 1 else 0.1)

    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_model(Drifting().eval(), "srgan_generator", tmp_path, parity_feeds=[{"image": real_crops(1, 16)[0]}])


def test_unknown_architecture_and_old_opset_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not exportable"):
        task_for_arch("image_discriminator")
    from export_tools.export.onnx import export_module

    with pytest.raises(ExportError, match="opset"):
        export_module(seeded(TinySR()), TASKS["face_sr"], tmp_path / "m.onnx", opset=13)
