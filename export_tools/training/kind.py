"""KinD trainer: three stages as in the paper, plus an optional end-to-end fine-tune.

  decom     DecomNet on (low, high) pairs: reconstruction S ~= R*I for both, reflectance
            consistency R_low ~= R_high, illumination smoothness (mutual + structure-aware), and a
            weak prior pulling I towards the blurred max channel so a short run converges.
  restore   DecomNet frozen; RestorationNet(R_low, I_low) -> R_high (L1 + SSIM + gradient).
  adjust    DecomNet frozen; IllumAdjustNet(I_low, ratio) -> I_high with ratio = mean(I_high)/mean(I_low).
  finetune  DecomNet frozen; restoration + adjustment trained end to end on the enhanced output
            R_restored * I_adjusted vs the well-lit image.

Pairs come from export_tools.data.lowlight (synthesized night frames of well-lit training photos).
Each stage stops at its step count or its time budget (max_minutes), whichever comes first, so a run
always finishes. Checkpoints (with optimizer, data RNG and progress) go to <out_dir>/latest.pt every
`checkpoint_every` steps; a rerun resumes from there. The last stage writes <out_dir>/final.pt, which
export_tools.training.common.build_from_checkpoint() turns back into the whole KinDEnhancer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.nn import functional as F

from edge_agent.enhance.tensors import pad_to_multiple
from export_tools.archs.kind import COMPACT_KWARGS, KinDEnhancer
from export_tools.data import images as image_sets
from export_tools.data.lowlight import NightPatches, synth_night
from export_tools.export.metrics import clahe, gamma_to_mean, psnr
from export_tools.training import common, loop, losses
from export_tools.training.common import build_from_checkpoint, load_checkpoint, save_checkpoint, setup
from export_tools.training.loop import LoopConfig, Progress

ARCH = "kind_enhancer"
STAGES = ("decom", "restore", "adjust", "finetune")
log = logging.getLogger("export_tools.training.kind")


class StageRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(ge=0)
    max_minutes: float = Field(gt=0)
    lr: float = Field(gt=0, le=1.0)
    patch: int = Field(default=128, ge=16, le=1024)
    batch: int = Field(default=8, ge=1, le=256)


class TrainingImages(BaseModel):
    """Which well-lit photos a low-light recipe synthesizes its night frames from (the KinD recipe
    and the U-Net ablation share it, so both read the same selection: training_images_for)."""

    model_config = ConfigDict(extra="forbid")
    # train_natural: the T91 set; set: the photos of `edge-export data build` (set_dir), the subsets
    # in set_subsets (natural photos; faces for a face fine-tune); or a folder of images (tests, custom)
    images: Literal["train_natural", "set"] | Path = "train_natural"
    set_dir: str = "work_cache/train_set"
    set_subsets: list[Literal["natural", "faces"]] = Field(default_factory=lambda: ["natural"], min_length=1)
    max_images: int | None = Field(default=None, ge=1)


class KinDRecipe(TrainingImages):
    seed: int = 0
    threads: int = Field(default=1, ge=0, le=64)
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # auto: CUDA when a GPU is present
    out_dir: Path = Path("runs/kind")
    arch_kwargs: dict = Field(default_factory=lambda: dict(COMPACT_KWARGS))
    # start from another run's final.pt (same arch_kwargs) instead of random weights; stages whose
    # section is left out are then skipped (a finetune-only continuation names just `finetune`)
    init_from: str | None = None
    # how night frames are made: classic (data/lowlight.py) or camera (data/camera_night.py, Brooks)
    synthesis: Literal["classic", "camera"] = "classic"
    # colour term of the finetune loss: L1 between the chromaticities (rgb / sum) of output and target
    chroma_weight: float = Field(default=0.0, ge=0.0, le=10.0)
    # weight of the structure term (1 - SSIM) of the end-to-end loss (0.5: L1 and SSIM on an equal
    # footing, as the loss was written first; more weighs structure over per-pixel error)
    ssim_weight: float = Field(default=0.5, ge=0.0, le=10.0)
    # the finetune stage also trains the decomposition of the dark frame (end to end, all three
    # nets); off: the decomposition stays as its own stage left it (KinD)
    finetune_decom: bool = False
    checkpoint_every: int = Field(default=200, ge=1)
    log_every: int = Field(default=50, ge=1)
    decom: StageRecipe | None = None
    restore: StageRecipe | None = None
    adjust: StageRecipe | None = None
    finetune: StageRecipe | None = None
    eval_seeds: int = Field(default=2, ge=1, le=16)

    @model_validator(mode="after")
    def _stages(self) -> KinDRecipe:
        missing = [s for s in ("decom", "restore", "adjust") if getattr(self, s) is None]
        if missing and self.init_from is None:
            raise ValueError(f"stages {', '.join(missing)} need a section unless the recipe starts "
                             "from a trained checkpoint (init_from)")
        if all(getattr(self, s) is None for s in STAGES):
            raise ValueError("the recipe names no stage to train")
        return self


def load_recipe(path: Path) -> KinDRecipe:
    return common.load_recipe(path, KinDRecipe)


def training_images_for(recipe: TrainingImages) -> tuple[list[np.ndarray], list[str]]:
    if recipe.images == "set":
        from export_tools.training.srgan import load_training_images

        images, names = load_training_images([f"set:{s}" for s in recipe.set_subsets], recipe.set_dir)
        if recipe.max_images:
            images, names = images[: recipe.max_images], names[: recipe.max_images]
        return images, names
    if recipe.images == "train_natural":
        paths = image_sets.train_paths()
    else:
        folder = Path(recipe.images)
        if not folder.is_dir():
            raise FileNotFoundError(f"training image folder {folder} not found")
        paths = image_sets.list_images(folder)
    if recipe.max_images:
        paths = paths[: recipe.max_images]
    if not paths:
        raise ValueError(f"no training images found for {recipe.images!r}")
    return [image_sets.read_rgb(p) for p in paths], [p.name for p in paths]


def _stage_params(model: KinDEnhancer, stage: str, finetune_decom: bool = False) -> list[torch.nn.Parameter]:
    if stage == "decom":
        return list(model.decom.parameters())
    if stage == "restore":
        return list(model.restore.parameters())
    if stage == "adjust":
        return list(model.adjust.parameters())
    decom = list(model.decom.parameters()) if finetune_decom else []
    return decom + list(model.restore.parameters()) + list(model.adjust.parameters())


def _ratio(i_high: torch.Tensor, i_low: torch.Tensor) -> torch.Tensor:
    return (i_high.mean(dim=(1, 2, 3)) / i_low.mean(dim=(1, 2, 3)).clamp_min(1e-4)).reshape(-1, 1)


def _smooth_max(image: torch.Tensor) -> torch.Tensor:
    """Blurred max-channel: an illumination prior that carries brightness but not texture
    (the unblurred max channel would leave R = S / max(S) with colour only and put texture into I)."""
    return F.avg_pool2d(image.amax(1, keepdim=True), 9, stride=1, padding=4, count_include_pad=False)


def chroma_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between chromaticities (each channel over the channel sum): colour, not brightness."""
    def chroma(x: torch.Tensor) -> torch.Tensor:
        return x / x.sum(dim=1, keepdim=True).clamp_min(1e-3)

    return (chroma(out) - chroma(target)).abs().mean()


def stage_loss(model: KinDEnhancer, stage: str, low: torch.Tensor, high: torch.Tensor,
               chroma_weight: float = 0.0, finetune_decom: bool = False,
               ssim_weight: float = 0.5) -> torch.Tensor:
    if stage == "decom":
        r_l, i_l = model.decom(low)
        r_h, i_h = model.decom(high)
        recon = (r_l * i_l - low).abs().mean() + (r_h * i_h - high).abs().mean()
        equal_r = (r_l - r_h).abs().mean()
        smooth = (losses.mutual_smoothness(i_l, i_h)
                  + losses.structure_aware_smoothness(i_l, low) + losses.structure_aware_smoothness(i_h, high))
        prior = (i_l - _smooth_max(low)).abs().mean() + (i_h - _smooth_max(high)).abs().mean()
        return recon + 0.05 * equal_r + 0.15 * smooth + 0.1 * prior
    with torch.no_grad():
        r_h, i_h = model.decom(high)
    # the finetune stage may train the decomposition of the dark frame too (finetune_decom)
    with torch.set_grad_enabled(torch.is_grad_enabled() and stage == "finetune" and finetune_decom):
        r_l, i_l = model.decom(low)
    if stage == "restore":
        r = model.restore(r_l, i_l)
        return (r - r_h).abs().mean() + 0.5 * losses.ssim_loss(r, r_h) + 0.5 * losses.gradient_loss(r, r_h)
    ratio = _ratio(i_h, i_l.detach())  # the ratio is an input, as at inference
    if stage == "adjust":
        i = model.adjust(i_l, ratio)
        return ((i - i_h) ** 2).mean() + losses.gradient_loss(i, i_h)
    out = torch.clamp(model.restore(r_l, i_l) * model.adjust(i_l, ratio), 0.0, 1.0)
    return enhancement_loss(out, high, chroma_weight, ssim_weight)


def enhancement_loss(out: torch.Tensor, high: torch.Tensor, chroma_weight: float = 0.0,
                     ssim_weight: float = 0.5) -> torch.Tensor:
    """The end-to-end loss of an enhanced frame against the well-lit one: L1 + ssim_weight * (1 - SSIM)
    + gradient / 4, plus the chroma term (KinD's finetune stage and the U-Net ablation share it)."""
    loss = ((out - high).abs().mean() + ssim_weight * losses.ssim_loss(out, high)
            + 0.25 * losses.gradient_loss(out, high))
    return loss + chroma_weight * chroma_loss(out, high) if chroma_weight > 0 else loss


def _save_latest(out_dir: Path, model, recipe, state: dict) -> Path:
    return save_checkpoint(out_dir / "latest.pt", arch=ARCH, arch_kwargs=recipe.arch_kwargs, model=model,
                           meta={"recipe": recipe.model_dump(mode="json")}, train_state=state)


def _run_stage(model: KinDEnhancer, recipe: KinDRecipe, stage: str, cfg: StageRecipe, data: NightPatches,
               out_dir: Path, state: dict, device: torch.device) -> None:
    params = _stage_params(model, stage, recipe.finetune_decom)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    step, elapsed = 0, 0.0
    if state.get("stage") == stage:
        step, elapsed = int(state["step"]), float(state["elapsed"])
        if state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
        log.info("resuming stage %s at step %d (%.1f min spent)", stage, step, elapsed / 60)
    model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)

    def one_step(_it: int) -> dict[str, torch.Tensor]:
        low_np, high_np = data.batch(cfg.batch)
        low, high = torch.from_numpy(low_np).to(device), torch.from_numpy(high_np).to(device)
        loss = stage_loss(model, stage, low, high, recipe.chroma_weight, recipe.finetune_decom,
                          recipe.ssim_weight)
        if torch.isfinite(loss):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return {"loss": loss.detach()}  # the loop stops on a loss that is not finite

    def save(progress: Progress) -> None:
        _save_latest(out_dir, model, recipe, {**state, "stage": stage, "step": progress.it,
                                               "elapsed": progress.elapsed, "optimizer": opt.state_dict(),
                                               "rng": data.rng.bit_generator.state})

    loop_cfg = LoopConfig(desc=f"kind/{stage}", max_iters=cfg.steps, budget_s=cfg.max_minutes * 60.0,
                          log_every=recipe.log_every, checkpoint_every=recipe.checkpoint_every, bar_interval_s=10)
    # cosine decay to 5 % of the stage's rate over whichever runs out first: steps or time
    progress = loop.run(loop_cfg, one_step, state=Progress(step, elapsed), save=save, log=log.info,
                        schedule=lambda f: loop.cosine(f, cfg.lr, 0.05 * cfg.lr), optimizers=[opt])
    step, elapsed = progress.it, progress.elapsed
    model.eval()
    state.setdefault("done", []).append(stage)
    state["stage_log"] = {**state.get("stage_log", {}), stage: {"steps": step, "minutes": round(elapsed / 60, 2)}}
    state.update(stage=None, step=0, elapsed=0.0, optimizer=None, rng=data.rng.bit_generator.state)
    _save_latest(out_dir, model, recipe, state)
    log.info("stage %s done: %d steps in %.1f min", stage, step, elapsed / 60)


@contextmanager
def train_log(out_dir: Path) -> Iterator[None]:
    """The trainer's log lines also go to <out_dir>/train.log while the block runs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def train(recipe_path: Path, out_dir: Path | None = None, resume: bool = True) -> Path:
    """Run (or resume) the recipe; returns the path of the final checkpoint (<out_dir>/final.pt)."""
    recipe = load_recipe(recipe_path)
    out_dir = Path(out_dir or recipe.out_dir)
    with train_log(out_dir):
        return _train(recipe, out_dir, resume)


def _train(recipe: KinDRecipe, out_dir: Path, resume: bool) -> Path:
    setup(recipe.seed, recipe.threads)
    device = common.resolve_device(recipe.device)
    model = KinDEnhancer(**recipe.arch_kwargs)
    images, names = training_images_for(recipe)
    state: dict = {"done": []}
    latest = out_dir / "latest.pt"
    if resume and latest.is_file():
        ckpt = load_checkpoint(latest)
        if ckpt["arch_kwargs"] != recipe.arch_kwargs:
            raise ValueError(f"{latest} was trained with arch_kwargs {ckpt['arch_kwargs']}, "
                             f"the recipe asks for {recipe.arch_kwargs}; use another out_dir or resume=False")
        model.load_state_dict(ckpt["state_dict"])
        state = dict(ckpt.get("train_state") or {"done": []})
        log.info("resumed from %s (done: %s)", latest, state.get("done"))
    elif recipe.init_from is not None:
        init = load_checkpoint(Path(recipe.init_from))
        if init.get("arch") != ARCH or init["arch_kwargs"] != recipe.arch_kwargs:
            raise ValueError(f"{recipe.init_from} holds {init.get('arch')} {init['arch_kwargs']}, "
                             f"the recipe asks for {ARCH} {recipe.arch_kwargs}")
        model.load_state_dict(init["state_dict"])
        log.info("starting from %s", recipe.init_from)
    model.to(device)
    log.info("training on %s", device)
    patch = max(getattr(recipe, s).patch for s in STAGES if getattr(recipe, s) is not None)
    if min(min(img.shape[:2]) for img in images) < patch:
        images = [img for img in images if min(img.shape[:2]) >= patch]
    log.info("training KinD %s on %d images; params %d; pad_multiple %d", recipe.arch_kwargs, len(images),
             sum(p.numel() for p in model.parameters()), model.pad_multiple)
    for stage in STAGES:
        cfg = getattr(recipe, stage)
        if cfg is not None and cfg.patch % model.pad_multiple:
            raise ValueError(f"stage {stage}: patch {cfg.patch} must be a multiple of {model.pad_multiple}")
    for stage in STAGES:
        cfg = getattr(recipe, stage)
        if cfg is None or stage in state.get("done", []):
            continue
        data = NightPatches(images, cfg.patch, seed=recipe.seed + STAGES.index(stage), synthesis=recipe.synthesis)
        if state.get("stage") == stage and state.get("rng"):
            data.rng.bit_generator.state = state["rng"]
        _run_stage(model, recipe, stage, cfg, data, out_dir, state, device)
    model.cpu()
    metrics = {}
    try:
        metrics = evaluate(model, seeds=recipe.eval_seeds, synthesis=recipe.synthesis)
        log.info("held-out PSNR: %s", metrics["mean"])
    except image_sets.DatasetMissing as exc:  # pragma: no cover - skimage is a core dependency
        log.warning("evaluation skipped: %s", exc)
    final = save_checkpoint(out_dir / "final.pt", arch=ARCH, arch_kwargs=recipe.arch_kwargs, model=model,
                            meta={"recipe": recipe.model_dump(mode="json"), "train_images": names,
                                  "stages": state.get("stage_log", {}), "metrics": metrics,
                                  "init_from": recipe.init_from,
                                  "pad_multiple": model.pad_multiple})
    log.info("final checkpoint %s", final)
    return final


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def enhance(model: KinDEnhancer, rgb: np.ndarray, ratio: float) -> np.ndarray:
    """RGB uint8 -> enhanced RGB uint8 with the PyTorch model (pads to pad_multiple, crops back)."""
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    x, size = pad_to_multiple(x, model.pad_multiple)
    y = model(torch.from_numpy(np.ascontiguousarray(x)), torch.tensor([[ratio]], dtype=torch.float32)).numpy()
    y = y[..., : size[0], : size[1]]
    return np.clip(y[0].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


@torch.no_grad()
def kind_ratio(model: KinDEnhancer, low: np.ndarray, high: np.ndarray) -> float:
    """KinD's evaluation ratio: mean illumination of the reference over that of the dark input."""
    def illum(rgb):
        x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        x, size = pad_to_multiple(x, model.pad_multiple)
        return model.decom(torch.from_numpy(np.ascontiguousarray(x)))[1][..., : size[0], : size[1]].mean()
    return float(illum(high) / illum(low).clamp_min(1e-4))


def evaluate(model: KinDEnhancer | Path | str, seeds: int = 2, images: dict[str, np.ndarray] | None = None,
             synthesis: Literal["classic", "camera"] = "classic") -> dict:
    """PSNR (dB) of the model vs gamma, CLAHE and gamma+CLAHE on synthesized night versions of the
    held-out images (export_tools.data.images.held_out_images, never trained on): the classic
    synthesis, or camera-true frames at camera_night.EVAL_SPEC (what verify and the benchmark use)."""
    from export_tools.data.camera_night import EVAL_SPEC, synth_camera_night

    if isinstance(model, str | Path):
        model, _ = build_from_checkpoint(Path(model))
    model.eval()
    images = images if images is not None else image_sets.held_out_images()
    rows = []
    for name, high in images.items():
        for seed in range(seeds):
            rng = np.random.default_rng(10_000 + seed)
            if synthesis == "camera":
                low, meta = synth_camera_night(high, EVAL_SPEC, rng)
            else:
                low, meta = synth_night(high, rng)
            target_mean = float(high.mean()) / 255.0
            gam = gamma_to_mean(low, target_mean)
            row = {
                "image": name, "seed": seed, "exposure": round(meta["exposure"], 4),
                "codec": meta.get("codec", f"jpeg q{meta.get('jpeg_quality')}"),
                "input": psnr(low, high),
                "gamma": psnr(gam, high),
                "clahe": psnr(clahe(low), high),
                "gamma_clahe": psnr(clahe(gam), high),
                "kind": psnr(enhance(model, low, kind_ratio(model, low, high)), high),
            }
            rows.append(row)
    keys = ("input", "gamma", "clahe", "gamma_clahe", "kind")
    mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys}
    best_baseline = max(mean["gamma"], mean["clahe"], mean["gamma_clahe"])
    mean["gain_over_best_baseline"] = round(mean["kind"] - best_baseline, 3)
    return {"mean": mean, "rows": rows}
