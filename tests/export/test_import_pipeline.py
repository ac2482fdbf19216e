"""The third-party SRGAN x4 checkpoint in ../shared/weights through import -> ONNX -> INT8 -> gate."""

from __future__ import annotations

import numpy as np
import pytest

from export_tools.export.metrics import bicubic
from export_tools.export.onnx import export_checkpoint
from export_tools.export.pipeline import quantize_step
from export_tools.export.samples import Sample, center_crop, make_feeds, sr_calibration
from export_tools.export.verify import verify

pytestmark = [pytest.mark.needs_shared, pytest.mark.slow]


def face_samples(n: int = 3, hr: int = 96) -> list[Sample]:
    import cv2

    from export_tools.data.images import face_paths, read_rgb

    out = []
    for p in face_paths()[:n]:
        ref = center_crop(read_rgb(p), hr)
        lr = cv2.resize(ref, (hr // 4, hr // 4), interpolation=cv2.INTER_CUBIC)
        feeds, size = make_feeds(lr, 1, None)
        out.append(Sample(name=p.stem, group="faces", feeds=feeds, size=size, input_rgb=lr,
                          reference=ref.astype(np.float32) / 255.0, baselines={"bicubic": bicubic(lr, 4)}))
    return out


def test_leftthomas_import_export_int8_gate(shared_dir, tmp_path):
    weights = shared_dir / "weights" / "srgan_x4_leftthomas.pth"
    if not weights.is_file():
        pytest.skip(f"{weights} not found (the public SRGAN checkpoint is not part of the repository)")
    from export_tools.archs.srgan_leftthomas import import_leftthomas

    ckpt = import_leftthomas(weights, tmp_path / "imported.pt")
    samples = face_samples()
    info = export_checkpoint(ckpt, tmp_path, parity_feeds=[s.feeds for s in samples[:1]])
    assert info.arch == "srgan_leftthomas" and info.scale == 4
    assert info.parity_max_abs < 1e-3
    quantize_step(tmp_path, calib_feeds=sr_calibration(4, n=6, lr_crop=24))
    report = verify(tmp_path, samples=samples, latency_repeats=0, grid=False)
    fp32 = report.scores["onnx_fp32"]["psnr"]
    assert 20.0 < fp32 < 40.0  # a trained x4 model on faces, not noise
    assert report.scores["openvino_fp16"]["psnr"] == pytest.approx(fp32, abs=0.05)
    int8_drops = [report.drops_db[k] for k in ("onnx_int8", "openvino_int8")]
    assert max(int8_drops) < 1.0  # INT8 works on a real trained model
    assert report.passed == (max(int8_drops) <= report.max_drop_db)
