"""KinD architecture: shapes at published and compact sizes, registry round trip, ONNX with dynamic H, W."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export_tools.archs.kind import COMPACT_KWARGS, PUBLISHED_KWARGS, KinDEnhancer
from export_tools.archs.registry import build


@pytest.fixture(autouse=True)
def _one_thread():
    """Small graphs: one thread is faster than two on a shared 2-core box and keeps timings stable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("kwargs", [PUBLISHED_KWARGS, COMPACT_KWARGS], ids=["published", "compact"])
def test_enhancer_shapes_and_range(kwargs):
    torch.manual_seed(0)
    model = KinDEnhancer(**kwargs).eval()
    m = model.pad_multiple
    h, w = m, 2 * m
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        r, i = model.decom(x)
        out = model(x, torch.tensor([[3.0]]))
    assert r.shape == (1, 3, h, w) and i.shape == (1, 1, h, w)
    assert float(r.min()) >= 0 and float(r.max()) <= 1 and float(i.min()) >= 0 and float(i.max()) <= 1
    assert out.shape == (1, 3, h, w)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_published_size_channels():
    model = KinDEnhancer(**PUBLISHED_KWARGS)
    # restoration U-Net 32-64-128-256-512 as in KinD; decomposition 32-64-128; adjustment 3 x 32
    enc_out = [block[0].out_channels for block in model.restore.enc]
    assert enc_out == [32, 64, 128, 256, 512]
    assert model.decom.conv3[1].out_channels == 128
    assert model.adjust.body[0].out_channels == 32
    assert model.pad_multiple == 16


def test_compact_is_much_lighter_than_published():
    published = _params(KinDEnhancer(**PUBLISHED_KWARGS))
    compact = _params(KinDEnhancer(**COMPACT_KWARGS))
    assert published > 7_000_000
    assert compact < published / 15


def test_ratio_changes_output():
    torch.manual_seed(1)
    model = KinDEnhancer(**COMPACT_KWARGS).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = model(x, torch.tensor([[1.0]]))
        b = model(x, torch.tensor([[8.0]]))
    assert not torch.allclose(a, b)


def test_bad_scale_is_refused():
    with pytest.raises(ValueError, match="restore_scale"):
        KinDEnhancer(restore_scale=3)


def test_registry_builds_from_json_kwargs():
    kwargs = json.loads(json.dumps(COMPACT_KWARGS))
    model = build("kind_enhancer", **kwargs)
    assert isinstance(model, KinDEnhancer)
    assert _params(model) == _params(KinDEnhancer(**COMPACT_KWARGS))


def test_onnx_export_dynamic_hw_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(2)
    model = KinDEnhancer(**COMPACT_KWARGS).eval()
    path = tmp_path / "kind.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 32, 32), torch.tensor([[2.0]])), str(path),
                      input_names=["image", "ratio"], output_names=["enhanced"], opset_version=17,
                      dynamic_axes={"image": {2: "h", 3: "w"}, "enhanced": {2: "h", 3: "w"}}, dynamo=False)
    import onnx

    proto = onnx.load(str(path))
    proto.ir_version = min(proto.ir_version, 10)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 48, 80), dtype=np.float32)  # not the export size
    ratio = np.array([[4.0]], np.float32)
    (got,) = sess.run(None, {"image": x, "ratio": ratio})
    with torch.no_grad():
        want = model(torch.from_numpy(x), torch.from_numpy(ratio)).numpy()
    assert got.shape == (1, 3, 48, 80)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("decom_scale", [1, 2, 4])
def test_folded_fast_path_equals_literal_kind_composition(decom_scale):
    torch.manual_seed(3)
    model = KinDEnhancer(**{**COMPACT_KWARGS, "decom_scale": decom_scale}).eval()
    assert model.fast
    x = torch.rand(2, 3, 32, 48)
    ratio = torch.tensor([[2.0], [5.0]])
    with torch.no_grad():
        fast = model(x, ratio)
        ref = model.forward_reference(x, ratio)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
    # the fixed upsampling weights are not part of the checkpoint
    assert not any("bilinear" in k for k in model.state_dict())


V3_KWARGS = {"width": 0.25, "restore_levels": 3, "decom_scale": 2, "restore_scale": 2, "illum_scale": 2,
             "restore_width": 0.375, "upsample": "bilinear"}


def test_bilinear_upsampling_has_no_transposed_conv_and_keeps_the_fast_path():
    torch.manual_seed(4)
    model = KinDEnhancer(**V3_KWARGS).eval()
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in KinDEnhancer(**COMPACT_KWARGS).modules())
    x, ratio = torch.rand(1, 3, 32, 48), torch.tensor([[6.0]])
    with torch.no_grad():
        torch.testing.assert_close(model(x, ratio), model.forward_reference(x, ratio), atol=1e-5, rtol=0)


def test_bilinear_decoder_leaves_no_grid_on_a_flat_input():
    """A flat input through a random 3-level restoration U-Net: a transposed conv gives each output
    phase its own kernel, so the flat field comes out with a period-8 pattern; the bilinear decoder
    leaves it flat away from the borders."""
    from export_tools.archs.kind import RestorationNet

    r, i = torch.full((1, 3, 96, 96), 0.3), torch.full((1, 1, 96, 96), 0.1)

    def phase_spread(upsample):
        torch.manual_seed(5)
        net = RestorationNet(width=0.375, levels=3, scale=1, upsample=upsample).eval()
        with torch.no_grad():
            y = net(r, i)[0, :, 32:64, 32:64]
        means = [float(y[:, a::8, b::8].mean()) for a in range(8) for b in range(8)]
        return max(means) - min(means)

    grid, smooth = phase_spread("transpose"), phase_spread("bilinear")
    assert grid > 1e-4 and smooth < 0.1 * grid, (smooth, grid)


def test_unknown_upsampler_is_refused():
    with pytest.raises(ValueError, match="upsample must be one of"):
        KinDEnhancer(**{**V3_KWARGS, "upsample": "nearest"})


def test_int8_settings_come_from_the_architecture():
    """The export pipeline reads each architecture's INT8 settings: KinD keeps its illumination path
    and decoder upsampling float and turns OpenVINO's fast bias correction off; others keep the default."""
    from export_tools.export.pipeline import _arch_attr, _keep_float

    assert _arch_attr("kind_enhancer", "int8_fast_bias_correction", True) is False
    assert _arch_attr("repsr", "int8_fast_bias_correction", True) is True
    assert _arch_attr("no_such_arch", "int8_fast_bias_correction", True) is True
    assert {"/ups", "/body/", "/i_out/"} <= set(_keep_float("kind_enhancer"))


def test_onnxruntime_int8_keeps_the_decomposition_and_encoder_float_openvino_quantizes_them(tmp_path, monkeypatch):
    """A real export + quantize of a small v3-shaped KinD: in the ORT QDQ model the decomposition and
    restoration-encoder convs keep float weights while the decoder convs are INT8; OpenVINO's NNCF
    is asked to leave only the shared keep_float list in float (its INT8 of kind_v4 lost 0.10 dB)."""
    import onnx

    from export_tools.export import openvino as ov_export
    from export_tools.export.onnx import export_model
    from export_tools.export.pipeline import _keep_float, quantize_step
    from export_tools.export.samples import lowlight_calibration

    seen = {}

    def fake_ov_int8(fp32, out, feeds, *, ignored_prefixes, **kw):
        seen["ignored"] = tuple(ignored_prefixes)
        return out

    monkeypatch.setattr(ov_export, "quantize_int8", fake_ov_int8)
    monkeypatch.setattr(ov_export, "convert_fp16", lambda fp32, out: out)
    torch.manual_seed(6)
    model = KinDEnhancer(**{**V3_KWARGS, "width": 0.125, "restore_width": 0.125}).eval()
    export_model(model, "kind_enhancer", tmp_path)
    quantize_step(tmp_path, calib_feeds=lowlight_calibration(model.pad_multiple, n=2, crop=64))
    graph = onnx.load(str(tmp_path / "model_int8.onnx")).graph
    produced_by = {o: n for n in graph.node for o in n.output}

    def int8_weights(conv) -> bool:
        src = produced_by.get(conv.input[1])
        return src is not None and src.op_type == "DequantizeLinear"

    convs = {n.name: int8_weights(n) for n in graph.node if n.op_type == "Conv"}
    assert convs, "no Conv nodes in the INT8 model"
    for prefix in ("/conv1/", "/conv8/", "/enc.1/"):
        named = [q for name, q in convs.items() if name.startswith(prefix)]
        assert named and not any(named), f"{prefix} convs should stay float in ORT INT8"
    assert any(q for name, q in convs.items() if name.startswith("/dec.")), "decoder convs should be INT8"
    assert seen["ignored"] == _keep_float("kind_enhancer")
    assert not any(p.startswith("/enc.1") or p == "/conv8/" for p in seen["ignored"])
