"""Trainer of the non-Retinex low-light ablation (export_tools/archs/unet_ll.py): one end-to-end stage.

Same data (camera-true night frames of the built set), the same loss (kind.enhancement_loss: L1 +
SSIM + gradient + chroma) and the same loop (training/loop.py: budget, cosine schedule, progress,
checkpoints, resume) as the KinD recipe it is compared with; the brightness ratio it trains with is
the one verify gives a non-KinD model (samples.max_channel_ratio: mean max-channel of the reference
over the night frame). `edge-export train unet --recipe configs/train/lowlight_unet.yaml`; rerunning
resumes from <out_dir>/latest.pt; <out_dir>/final.pt is our standard checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from export_tools.archs.unet_ll import UNetEnhancer
from export_tools.data.lowlight import NightPatches
from export_tools.training import common, loop
from export_tools.training.common import load_checkpoint, save_checkpoint, setup
from export_tools.training.kind import TrainingImages, enhancement_loss, log, train_log, training_images_for
from export_tools.training.loop import LoopConfig, Progress

ARCH = "unet_enhancer"
RATIO_RANGE = (1.0, 20.0)


class UNetRecipe(TrainingImages):
    seed: int = 0
    threads: int = Field(default=1, ge=0, le=64)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    out_dir: Path = Path("runs/lowlight_unet")
    arch_kwargs: dict = Field(default_factory=dict)
    images: Literal["train_natural", "set"] | Path = "set"
    synthesis: Literal["classic", "camera"] = "camera"
    chroma_weight: float = Field(default=0.5, ge=0.0, le=10.0)
    steps: int = Field(ge=1)
    max_minutes: float = Field(gt=0)
    lr: float = Field(default=1e-3, gt=0, le=1.0)
    patch: int = Field(default=128, ge=16, le=1024)
    batch: int = Field(default=8, ge=1, le=256)
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=50, ge=1)


def max_channel_ratio(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[N,1]: mean max-channel of high over low, per image, within RATIO_RANGE."""
    lo = low.amax(1).mean(dim=(1, 2)).clamp_min(1e-4)
    return (high.amax(1).mean(dim=(1, 2)) / lo).clamp(*RATIO_RANGE).reshape(-1, 1)


def train(recipe_path: Path, out_dir: Path | None = None, resume: bool = True) -> Path:
    recipe = common.load_recipe(recipe_path, UNetRecipe)
    out_dir = Path(out_dir or recipe.out_dir)
    with train_log(out_dir):
        return _train(recipe, out_dir, resume)


def _train(recipe: UNetRecipe, out_dir: Path, resume: bool) -> Path:
    setup(recipe.seed, recipe.threads)
    device = common.resolve_device(recipe.device)
    model = UNetEnhancer(**recipe.arch_kwargs)
    if recipe.patch % model.pad_multiple:
        raise ValueError(f"patch {recipe.patch} must be a multiple of {model.pad_multiple}")
    images, names = training_images_for(recipe)  # same selection as the KinD recipe
    images = [img for img in images if min(img.shape[:2]) >= recipe.patch]
    data = NightPatches(images, recipe.patch, seed=recipe.seed, synthesis=recipe.synthesis)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    progress = Progress()
    latest = out_dir / "latest.pt"
    if resume and latest.is_file():
        ck = load_checkpoint(latest)
        if ck["arch_kwargs"] != recipe.arch_kwargs:
            raise ValueError(f"{latest} was trained with arch_kwargs {ck['arch_kwargs']}, the recipe asks for "
                             f"{recipe.arch_kwargs}; use another out_dir or resume=False")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["train_state"]["optimizer"])
        data.rng.bit_generator.state = ck["train_state"]["rng"]
        progress = Progress(int(ck["train_state"]["step"]), float(ck["train_state"]["elapsed"]))
        log.info("resumed from %s at step %d", latest, progress.it)
    model.to(device).train()
    log.info("training the U-Net ablation %s on %d images, %d params, on %s", recipe.arch_kwargs, len(images),
             sum(p.numel() for p in model.parameters()), device)

    def one_step(_it: int) -> dict[str, torch.Tensor]:
        low_np, high_np = data.batch(recipe.batch)
        low, high = torch.from_numpy(low_np).to(device), torch.from_numpy(high_np).to(device)
        loss = enhancement_loss(model(low, max_channel_ratio(low, high)), high, recipe.chroma_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    def save(p: Progress) -> None:
        save_checkpoint(latest, arch=ARCH, arch_kwargs=recipe.arch_kwargs, model=model,
                        meta={"recipe": recipe.model_dump(mode="json")},
                        train_state={"step": p.it, "elapsed": p.elapsed, "optimizer": opt.state_dict(),
                                     "rng": data.rng.bit_generator.state})

    cfg = LoopConfig(desc="unet", max_iters=recipe.steps, budget_s=recipe.max_minutes * 60.0,
                     log_every=recipe.log_every, checkpoint_every=recipe.checkpoint_every, bar_interval_s=10)
    progress = loop.run(cfg, one_step, state=progress, save=save, log=log.info,
                        schedule=lambda f: loop.cosine(f, recipe.lr, 0.05 * recipe.lr), optimizers=[opt])
    model.cpu().eval()
    final = save_checkpoint(out_dir / "final.pt", arch=ARCH, arch_kwargs=recipe.arch_kwargs, model=model,
                            meta={"recipe": recipe.model_dump(mode="json"), "train_images": names,
                                  "stages": {"end_to_end": {"steps": progress.it,
                                                            "minutes": round(progress.elapsed / 60, 2)}}})
    log.info("final checkpoint %s (%d steps, %.1f min)", final, progress.it, progress.elapsed / 60)
    return final
