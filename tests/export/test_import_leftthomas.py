"""The importer of the public leftthomas SRGAN x4 checkpoint (needs ../shared/weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export_tools.archs.srgan_leftthomas import LeftThomasGenerator, import_leftthomas
from export_tools.training.common import build_from_checkpoint


def _weights(shared_dir):
    path = shared_dir / "weights" / "srgan_x4_leftthomas.pth"
    if not path.is_file():
        pytest.skip(f"public SRGAN checkpoint not found at {path}")
    return path


def test_topology_shapes_and_range():
    g = LeftThomasGenerator().eval()
    with torch.no_grad():
        y = g(torch.rand(1, 3, 6, 10))
    assert y.shape == (1, 3, 24, 40) and 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    with pytest.raises(ValueError, match="power of two"):
        LeftThomasGenerator(scale=3)


@pytest.mark.needs_shared
def test_import_strict_loads_and_super_resolves(shared_dir, tmp_path):
    out = import_leftthomas(_weights(shared_dir), tmp_path / "leftthomas.pt")
    model, ckpt = build_from_checkpoint(out)
    assert ckpt["arch"] == "srgan_leftthomas" and ckpt["meta"]["tensors"] == 79
    raw = torch.load(_weights(shared_dir), map_location="cpu", weights_only=True)
    assert torch.equal(model.state_dict()["block8.2.weight"], raw["block8.2.weight"])
    # it really super-resolves: better than bicubic on a held-out face region
    from export_tools.data.images import held_out_images
    from export_tools.data.lowres import DegradeSpec, bicubic_upscale, degrade
    from export_tools.export.metrics import y_psnr as psnr_y
    from export_tools.training.sr_eval import upscale

    hr = np.ascontiguousarray(held_out_images()["astronaut"][40:168, 160:288])  # the face, 128x128
    lr = degrade(hr, DegradeSpec(scale=4), np.random.default_rng(0))
    sr = upscale(model, lr)
    assert sr.shape == hr.shape
    assert psnr_y(sr, hr, 4) > psnr_y(bicubic_upscale(lr, 4), hr, 4) + 0.5


@pytest.mark.needs_shared
def test_import_refuses_a_mismatching_or_broken_file(shared_dir, tmp_path):
    raw = torch.load(_weights(shared_dir), map_location="cpu", weights_only=True)
    del raw["block7.1.weight"]  # e.g. the later BatchNorm layout of block7
    bad = tmp_path / "bad.pth"
    torch.save(raw, bad)
    with pytest.raises(ValueError, match="topology"):
        import_leftthomas(bad, tmp_path / "x.pt")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="state_dict"):
        import_leftthomas(junk, tmp_path / "y.pt")
    with pytest.raises(FileNotFoundError):
        import_leftthomas(tmp_path / "missing.pth", tmp_path / "z.pt")
    assert not (tmp_path / "x.pt").exists()
