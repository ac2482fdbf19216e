"""INT8 round trip on tiny models: ORT static QDQ (U8S8) and OpenVINO FP16 + NNCF INT8 stay close to FP32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fixtures.export_models import TinyLowLight, TinySR, real_crops, seeded, sr_calibration

from export_tools.export import openvino as ovx
from export_tools.export.backends import runner_for
from export_tools.export.metrics import psnr
from export_tools.export.onnx import export_model
from export_tools.export.quantize import QuantizeError, int8_summary, large_kernel_convs, quantize_onnx_int8


@pytest.fixture(scope="module")
def sr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sr")
    export_model(seeded(TinySR()), "srgan_generator", d)
    return d


def test_ort_int8_round_trip_u8s8(sr_dir):
    out = quantize_onnx_int8(sr_dir / "model_fp32.onnx", sr_dir / "model_int8.onnx", sr_calibration())
    counts = int8_summary(out)
    assert counts["int8_convs"] == 6 and counts["float_convs"] == 0
    model = onnx.load(str(out))
    inits = {i.name: i for i in model.graph.initializer}
    # activations unsigned (uint8 zero points on QuantizeLinear), weights signed (int8)
    q_zero = [inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert onnx.TensorProto.UINT8 in q_zero
    assert any(i.data_type == onnx.TensorProto.INT8 for i in inits.values())
    assert model.ir_version <= 10
    x = {"image": real_crops(1, 32, seed=11)[0]}
    ref = runner_for(sr_dir / "model_fp32.onnx")(x)
    got = runner_for(out, threads=1)(x)
    assert got.shape == ref.shape == (1, 3, 128, 128)
    assert psnr(got, ref) > 35.0


def test_openvino_fp16_and_nncf_int8_round_trip(sr_dir):
    fp16 = ovx.convert_fp16(sr_dir / "model_fp32.onnx", sr_dir / ovx.FP16_NAME)
    int8 = ovx.quantize_int8(sr_dir / "model_fp32.onnx", sr_dir / ovx.INT8_NAME, sr_calibration())
    assert ovx.bin_path(fp16).is_file() and ovx.bin_path(int8).is_file()
    assert "FakeQuantize" in int8.read_text() or "fake_quantize" in int8.read_text().lower()
    x = {"image": real_crops(1, 24, seed=12)[0]}
    ref = runner_for(sr_dir / "model_fp32.onnx")(x)
    assert psnr(runner_for(fp16)(x), ref) > 60.0
    assert psnr(runner_for(int8)(x), ref) > 35.0


def test_large_kernel_conv_stays_float_and_ratio_input_survives(tmp_path):
    export_model(seeded(TinyLowLight()), "kind_enhancer", tmp_path)
    fp32 = tmp_path / "model_fp32.onnx"
    assert len(large_kernel_convs(onnx.load(str(fp32)), 7)) == 1  # the 9x9 head
    calib = [{"image": c * 0.2, "ratio": np.full((1, 1), 4.0, np.float32)} for c in real_crops(4, 32)]
    out = quantize_onnx_int8(fp32, tmp_path / "int8.onnx", calib)
    counts = int8_summary(out)
    assert counts["float_convs"] == 1 and counts["int8_convs"] >= 3
    x = {"image": real_crops(1, 32, seed=5)[0] * 0.2, "ratio": np.full((1, 1), 4.0, np.float32)}
    assert psnr(runner_for(out)(x), runner_for(fp32)(x)) > 35.0


def test_quantize_needs_calibration_images(sr_dir, tmp_path):
    with pytest.raises(QuantizeError, match="calibration"):
        quantize_onnx_int8(sr_dir / "model_fp32.onnx", tmp_path / "x.onnx", [])
    with pytest.raises(ovx.OpenVINOError, match="calibration"):
        ovx.quantize_int8(sr_dir / "model_fp32.onnx", tmp_path / "x.xml", [])


def test_float_tail_keeps_the_output_stage_float(sr_dir, tmp_path):
    from export_tools.export.quantize import output_tail

    tail = output_tail(onnx.load(str(sr_dir / "model_fp32.onnx")))
    ops = {n.op_type for n in onnx.load(str(sr_dir / "model_fp32.onnx")).graph.node if n.name in tail}
    assert {"Add", "Conv", "Resize"} <= ops
    out = quantize_onnx_int8(sr_dir / "model_fp32.onnx", tmp_path / "t.onnx", sr_calibration(), float_tail=True)
    assert int8_summary(out)["float_convs"] == 1
