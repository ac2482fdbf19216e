"""Shapes and behaviour of the SR generator and discriminators (tiny sizes)."""

from __future__ import annotations

import json

import pytest
import torch

from export_tools.archs.registry import build
from export_tools.archs.srgan import FeatureDiscriminator, ImageDiscriminator, SRGANGenerator


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("srfeat", [False, True])
@pytest.mark.parametrize("upsampler", ["progressive", "direct"])
def test_generator_output_shape_and_range(scale, srfeat, upsampler):
    g = SRGANGenerator(scale=scale, n_blocks=2, channels=8, srfeat_skip=srfeat, upsampler=upsampler).eval()
    x = torch.rand(2, 3, 10, 14)
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 3, 10 * scale, 14 * scale)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_srfeat_has_one_weighted_skip_per_block():
    g = SRGANGenerator(n_blocks=5, channels=8, srfeat_skip=True)
    assert len(g.skips) == 5 and all(s.kernel_size == (1, 1) for s in g.skips)
    assert g.body_tail is None
    assert SRGANGenerator(n_blocks=5, channels=8).skips is None


def test_zeroed_body_with_bicubic_skip_is_bicubic():
    g = SRGANGenerator(scale=4, n_blocks=1, channels=8, upsampler="direct").eval()
    torch.nn.init.zeros_(g.upsample[0].weight)
    torch.nn.init.zeros_(g.upsample[0].bias)
    x = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    ref = torch.nn.functional.interpolate(x, scale_factor=4.0, mode="bicubic", align_corners=False).clamp(0, 1)
    with torch.no_grad():
        assert torch.allclose(g(x), ref, atol=1e-6)


def test_batch_norm_option_and_bad_kwargs():
    g = SRGANGenerator(n_blocks=2, channels=8, batch_norm=True, act="prelu")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in SRGANGenerator(n_blocks=2, channels=8).modules())
    with pytest.raises(ValueError, match="scale"):
        SRGANGenerator(scale=5)
    with pytest.raises(ValueError, match="upsampler"):
        SRGANGenerator(upsampler="deconv")


def test_registry_builds_from_json_kwargs():
    kwargs = json.loads(json.dumps({"scale": 2, "n_blocks": 1, "channels": 8, "srfeat_skip": True}))
    g = build("srgan_generator", **kwargs)
    assert isinstance(g, SRGANGenerator) and g.scale == 2


def test_discriminators_give_one_logit_per_sample_and_learn():
    d_img = build("image_discriminator", base=8, n_stages=2)
    assert isinstance(d_img, ImageDiscriminator)
    assert d_img(torch.rand(3, 3, 32, 40)).shape == (3, 1)
    d_feat = build("feature_discriminator", in_channels=16, base=8, n_stages=2)
    assert isinstance(d_feat, FeatureDiscriminator)
    assert d_feat(torch.rand(2, 16, 12, 12)).shape == (2, 1)
    # a few steps separate constant-bright "real" maps from dark "fake" ones (no BatchNorm here:
    # with per-batch statistics an all-real and an all-fake batch look alike)
    torch.manual_seed(0)
    d_feat = build("feature_discriminator", in_channels=16, base=8, n_stages=2, batch_norm=False)
    opt = torch.optim.Adam(d_feat.parameters(), lr=1e-3)
    real, fake = torch.rand(4, 16, 8, 8) + 1.0, torch.rand(4, 16, 8, 8) - 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for _ in range(30):
        loss = bce(d_feat(real), torch.ones(4, 1)) + bce(d_feat(fake), torch.zeros(4, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    d_feat.eval()
    assert float(d_feat(real).mean()) > float(d_feat(fake).mean())


def test_generator_exports_to_onnx_with_dynamic_size(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    g = SRGANGenerator(scale=4, n_blocks=2, channels=8, srfeat_skip=True, upsampler="direct").eval()
    path = tmp_path / "g.onnx"
    torch.onnx.export(g, torch.rand(1, 3, 16, 16), str(path), input_names=["image"], output_names=["sr"],
                      opset_version=17, dynamic_axes={"image": {2: "h", 3: "w"}, "sr": {2: "H", 3: "W"}},
                      dynamo=False)
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 12, 20)
    (y,) = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = g(x).numpy()
    assert y.shape == (1, 3, 48, 80)
    assert abs(y - ref).max() < 1e-4


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_phase_upsample_equals_interpolate_borders_included(mode, scale):
    from export_tools.archs.srgan import PhaseUpsample

    x = torch.rand(2, 3, 11, 17)
    ref = torch.nn.functional.interpolate(x, scale_factor=float(scale), mode=mode, align_corners=False)
    out = torch.nn.functional.pixel_shuffle(PhaseUpsample(scale, mode)(x), scale)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5


def test_global_skip_kernel_is_not_in_checkpoints():
    g = SRGANGenerator(scale=4, n_blocks=1, channels=8, upsampler="direct", global_skip="bicubic")
    assert not any(k.startswith("skip_up") for k in g.state_dict())
