"""RepSR: the merged plain net equals the multi-branch training net, exports plain, stays small."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from export_tools.archs.registry import build
from export_tools.archs.repsr import ECB, AnchorBicubic, RepSR

PLAIN_OPS = {"Conv", "Relu", "PRelu", "DepthToSpace", "Add", "Mul", "Clip", "Constant", "Identity"}


def _randomized(seed: int = 0, **kwargs) -> RepSR:
    """A RepSR whose every branch matters: the edge branches' scales/biases (1e-3 at init) and the
    PReLU slopes drawn at random too; the tail scaled down so that the output is not mostly clipped."""
    torch.manual_seed(seed)
    m = RepSR(**kwargs)
    with torch.no_grad():
        for name, p in m.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("scale", "bias") and ("sobel" in name or "laplacian" in name):
                p.normal_(0.0, 0.03)
            elif leaf == "weight" and p.ndim == 1:  # PReLU slopes
                p.uniform_(0.0, 0.5)
            elif name == "skip_scale":
                p.fill_(0.7)
        for p in m.tail.parameters():  # a trained residual is small next to the anchor
            p.mul_(0.25)
    return m.use_branches(True)  # the reference: every block as its sum of branches


def _unclamped(m: RepSR, x: torch.Tensor) -> torch.Tensor:
    """No BatchNorm anywhere, so train mode is eval mode without the final clamp."""
    was = m.training
    m.train()
    with torch.no_grad():
        y = m(x)
    m.train(was)
    return y


@pytest.mark.parametrize("long_skip", [False, True])
@pytest.mark.parametrize("act", ["relu", "prelu"])
def test_merge_is_exact_in_float64(long_skip, act):
    m = _randomized(channels=8, blocks=3, long_skip=long_skip, act=act).double().eval()
    x = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    with torch.no_grad():
        ref, ref_raw = m(x), _unclamped(m, x)
        merged = m.merged().eval()
        assert merged.is_merged and not m.is_merged
        got, got_raw = merged(x), _unclamped(merged, x)
    assert got.shape == (2, 3, 68, 92)
    assert float((got - ref).abs().max()) < 1e-10
    assert float((got_raw - ref_raw).abs().max()) < 1e-10
    assert float(ref_raw.std()) > 0.05  # the comparison is not on a constant picture


@pytest.mark.parametrize("long_skip", [False, True])
def test_merge_default_size_float32_within_1e5(long_skip):
    m = _randomized(seed=1, long_skip=long_skip).eval()  # channels=32, blocks=8
    x = torch.rand(1, 3, 17, 23)
    with torch.no_grad():
        ref, ref_raw = m(x), _unclamped(m, x)
        clipped = float(((ref == 0) | (ref == 1)).float().mean())
        m.merge()  # in place
        got, got_raw = m(x), _unclamped(m, x)
    assert m.is_merged
    assert float((got - ref).abs().max()) < 1e-5
    assert float((got_raw - ref_raw).abs().max()) < 1e-5
    assert clipped < 0.3


def test_merge_keeps_border_exact_for_the_expand_bias():
    """A large expand bias and nothing else: wrong border handling of 1x1->3x3 would show at the edges."""
    torch.manual_seed(0)
    ecb = ECB(4, 5).double()
    ecb.fused = False
    with torch.no_grad():
        for p in ecb.parameters():
            p.zero_()
        ecb.conv1x1_3x3.expand.bias.fill_(3.0)
        ecb.conv1x1_3x3.squeeze.weight.normal_()
        ecb.sobel_x.conv.bias.fill_(2.0)
        ecb.sobel_x.scale.fill_(1.0)
        x = torch.rand(1, 4, 6, 7, dtype=torch.float64)
        ref = ecb(x)
        got = ecb.merged_conv()(x)
    assert float(ref[..., 0, :].abs().max()) > 1.0  # the borders do carry the bias
    assert float((got - ref).abs().max()) < 1e-12


@pytest.mark.parametrize("long_skip,act", [(False, "relu"), (True, "prelu")])
def test_folded_training_forward_equals_branches_in_outputs_and_gradients(long_skip, act):
    """Training runs each block through its folded kernel: same outputs and same gradients for
    every parameter as the branch sum, so it is the same training, only faster."""
    ref = _randomized(seed=5, channels=8, blocks=3, long_skip=long_skip, act=act).double().train()
    fused = _randomized(seed=5, channels=8, blocks=3, long_skip=long_skip, act=act).double().train()
    fused.use_branches(False)
    assert all(m.fused for m in fused.modules() if isinstance(m, ECB))
    x = torch.rand(2, 3, 13, 17, dtype=torch.float64)
    target = torch.rand(2, 3, 52, 68, dtype=torch.float64)
    outs = {}
    for name, m in (("ref", ref), ("fused", fused)):
        y = m(x)
        (y - target).abs().mean().backward()
        outs[name] = y.detach()
    assert float((outs["fused"] - outs["ref"]).abs().max()) < 1e-10
    grads_ref = dict(ref.named_parameters())
    n = 0
    for name, p in fused.named_parameters():
        g_ref = grads_ref[name].grad
        assert p.grad is not None and g_ref is not None, name
        assert float((p.grad - g_ref).abs().max()) <= 1e-9 * max(1.0, float(g_ref.abs().max())), name
        n += int(float(g_ref.abs().max()) > 0)
    assert n > 20  # the gradients compared are not all zero


def test_merged_is_plain_and_small():
    m = RepSR().merge()  # the default: channels=32, blocks=8
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(c.kernel_size == (3, 3) for c in convs)
    merged_params = sum(p.numel() for p in m.parameters())
    train_params = sum(p.numel() for p in RepSR().parameters())
    assert merged_params == 3 * 32 * 9 + 32 + 8 * (32 * 32 * 9 + 32) + 32 * 48 * 9 + 48 == 88752
    assert merged_params < 100_000 < train_params
    assert sum(p.numel() for p in RepSR(long_skip=True).merge().parameters()) == 88753
    # merged state_dict loads into a deploy-built net
    deploy = build("repsr", deploy=True)
    deploy.load_state_dict(m.state_dict())
    assert deploy.is_merged and set(deploy.state_dict()) == set(m.state_dict())


def test_output_is_4x_in_range_and_anchor_is_nearest():
    m = _randomized(channels=8, blocks=2).eval()
    x = torch.rand(2, 3, 9, 13)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 3, 36, 52)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    # zero tail: the output is the nearest-upsampled input
    with torch.no_grad():
        for p in m.tail.parameters():
            p.zero_()
        assert torch.equal(m(x), F.interpolate(x, scale_factor=4.0, mode="nearest"))


def test_registry_builds_from_json_kwargs_and_rejects_bad_ones():
    kwargs = json.loads(json.dumps({"channels": 8, "blocks": 2, "long_skip": True}))
    m = build("repsr", **kwargs)
    assert isinstance(m, RepSR) and m.scale == 4 and m.skip_scale is not None
    assert not any(k.endswith("mask") or k.startswith("anchor") for k in m.state_dict())
    with pytest.raises(ValueError, match="blocks"):
        RepSR(blocks=0)
    with pytest.raises(ValueError, match="activation"):
        RepSR(act="gelu")


@pytest.mark.parametrize("long_skip,act", [(False, "relu"), (True, "prelu")])
def test_merged_onnx_is_plain_and_matches(tmp_path, long_skip, act):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    m = _randomized(seed=2, channels=16, blocks=4, long_skip=long_skip, act=act).eval().merge()
    path = tmp_path / "repsr.onnx"
    torch.onnx.export(m, torch.rand(1, 3, 16, 16), str(path), input_names=["image"], output_names=["output"],
                      opset_version=17, dynamic_axes={"image": {2: "H", 3: "W"}, "output": {2: "H_out", 3: "W_out"}},
                      dynamo=False)
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert ops <= PLAIN_OPS, ops - PLAIN_OPS
    assert sum(n.op_type == "Conv" for n in graph.node) == 4 + 2 + 1  # head, blocks, tail, anchor
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in [(17, 23), (12, 31)]:
        x = torch.rand(1, 3, h, w)
        (y,) = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            ref = m(x).numpy()
        assert y.shape == (1, 3, 4 * h, 4 * w)
        assert abs(y - ref).max() < 1e-5


def test_bicubic_anchor_is_opencv_bicubic_and_training_starts_there():
    import cv2
    import numpy as np

    x = np.random.default_rng(3).random((19, 26, 3)).astype(np.float32)
    ref = cv2.resize(x, (26 * 4, 19 * 4), interpolation=cv2.INTER_CUBIC)
    t = torch.from_numpy(x.transpose(2, 0, 1))[None]
    with torch.no_grad():
        got = F.pixel_shuffle(AnchorBicubic(3, 4)(t), 4)[0].numpy().transpose(1, 2, 0)
        assert abs(got - ref)[8:-8, 8:-8].max() < 1e-5  # inside: exactly OpenCV's bicubic
        assert abs(got - ref).max() > 1e-2  # the outer two input pixels see zero padding
        start = RepSR(channels=8, blocks=2, anchor="bicubic").eval()(t)[0].numpy().transpose(1, 2, 0)
    assert abs(start - np.clip(ref, 0, 1))[8:-8, 8:-8].max() < 0.05  # the untrained net is (almost) bicubic
    with pytest.raises(ValueError, match="anchor"):
        RepSR(anchor="lanczos")


def test_bicubic_anchor_merges_exactly_and_exports_plain(tmp_path):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    m = _randomized(seed=4, channels=8, blocks=2, anchor="bicubic").eval()
    x = torch.rand(1, 3, 15, 11)
    with torch.no_grad():
        ref = m(x)
        merged = m.merged()
        assert abs(merged(x) - ref).max() < 1e-5
    deploy = build("repsr", channels=8, blocks=2, anchor="bicubic", deploy=True)
    deploy.load_state_dict(merged.state_dict())
    path = tmp_path / "bic.onnx"
    torch.onnx.export(merged, torch.rand(1, 3, 16, 16), str(path), input_names=["image"], output_names=["output"],
                      opset_version=17, dynamic_axes={"image": {2: "H", 3: "W"}, "output": {2: "H_out", 3: "W_out"}},
                      dynamo=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops <= PLAIN_OPS, ops - PLAIN_OPS
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"image": x.numpy()})
    assert abs(y - ref.numpy()).max() < 1e-5


def test_int8_leaves_the_fixed_bicubic_anchor_in_float(tmp_path):
    """The anchor's fixed kernel in INT8 cost OpenVINO 0.39 dB; the keep_float prefix must name the
    exported anchor Conv, or the quantizers silently quantize it again."""
    onnx = pytest.importorskip("onnx")
    from export_tools.export.pipeline import _keep_float

    prefixes = _keep_float("repsr")
    m = RepSR(channels=8, blocks=1, anchor="bicubic").eval().merge()
    path = tmp_path / "a.onnx"
    torch.onnx.export(m, torch.rand(1, 3, 16, 16), str(path), input_names=["image"], output_names=["output"],
                      opset_version=17, dynamic_axes={"image": {2: "H", 3: "W"}}, dynamo=False)
    kept = [n for n in onnx.load(str(path)).graph.node if n.name.startswith(prefixes)]
    assert [n.op_type for n in kept if n.op_type != "Constant"] == ["Conv"]  # its kernel: a Constant
