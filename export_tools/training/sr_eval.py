"""Held-out evaluation of a super-resolution model: Y-PSNR/SSIM of the model and of bicubic on
images it never trained on, degraded by a DegradeSpec (seeded per image). Used by the SRGAN
training (srgan.py), the CLI and the model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from export_tools.data.lowres import DegradeSpec, bicubic_upscale, degrade, mod_crop
from export_tools.export.metrics import y_psnr, y_ssim


def eval_images(faces: bool = True, max_side: int = 512) -> dict[str, np.ndarray]:
    from export_tools.data.images import face_paths, held_out_images, read_rgb

    out = {}
    for name, img in held_out_images().items():
        out[name] = img
    if faces:
        for p in face_paths():
            out[f"face/{p.stem}"] = read_rgb(p)
    for name, img in out.items():
        h, w = img.shape[:2]
        if max(h, w) > max_side:
            y, x = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            out[name] = np.ascontiguousarray(img[y : y + max_side, x : x + max_side])
    return out


def upscale(model: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    """RGB uint8 -> RGB uint8 through the model (eval mode, no grad)."""
    x = torch.from_numpy(lr.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
    with torch.no_grad():
        y = model(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)


def evaluate(model_or_ckpt: torch.nn.Module | Path, spec: DegradeSpec | None = None, *, seed: int = 1234,
             faces: bool = True, max_side: int = 512,
             images: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Y-PSNR/SSIM of the model and of bicubic on held-out images degraded by `spec` (seeded per image).

    Returns {"images": {name: {...}}, "mean": {psnr_y, psnr_y_bicubic, gain_db, ssim_y, ssim_y_bicubic}}.
    """
    if isinstance(model_or_ckpt, (str, Path)):
        from export_tools.training.common import build_from_checkpoint

        model, _ = build_from_checkpoint(Path(model_or_ckpt))
    else:
        model = model_or_ckpt
    was_training = model.training
    model.eval()
    scale = int(getattr(model, "scale", 4))
    spec = spec or DegradeSpec(scale=scale)
    if spec.scale != scale:
        raise ValueError(f"degradation scale {spec.scale} differs from the model scale {scale}")
    images = images if images is not None else eval_images(faces=faces, max_side=max_side)
    rows = {}
    for i, (name, img) in enumerate(sorted(images.items())):
        hr = mod_crop(img, scale)
        lr = degrade(hr, spec, np.random.default_rng(seed + i))
        sr = upscale(model, lr)
        bic = bicubic_upscale(lr, scale)
        rows[name] = {
            "psnr_y": y_psnr(sr, hr, scale), "psnr_y_bicubic": y_psnr(bic, hr, scale),
            "ssim_y": y_ssim(sr, hr, scale), "ssim_y_bicubic": y_ssim(bic, hr, scale),
        }
    model.train(was_training)
    keys = ("psnr_y", "psnr_y_bicubic", "ssim_y", "ssim_y_bicubic")
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    mean["gain_db"] = mean["psnr_y"] - mean["psnr_y_bicubic"]
    return {"images": rows, "mean": mean, "degradation": spec.model_dump(), "seed": seed}
