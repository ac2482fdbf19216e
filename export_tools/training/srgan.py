"""SRGAN face super-resolution training: L1 pretraining ("faithful", ships) and an adversarial fine-tune
("perceptual") with an image discriminator, a feature discriminator and a feature loss.

Recipes: configs/train/srgan_faithful.yaml, configs/train/srgan_perceptual.yaml (validated by Recipe).
Both stop at max_iters or the time budget, whichever comes first, so a run always finishes; the
learning rate follows a cosine over that progress. `last.pt` is written every checkpoint_every_s and
`train(..., resume=True)` continues from it exactly; `final.pt` is our standard checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tqdm import tqdm

from export_tools.archs.registry import build
from export_tools.data.lowres import DegradeSpec, PatchSampler, cctv_eval_spec
from export_tools.training import common, loop
from export_tools.training.common import load_checkpoint, save_checkpoint, setup
from export_tools.training.loop import LoopConfig, Progress
from export_tools.training.sr_eval import evaluate

ARCH = "srgan_generator"  # the default generator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    # "t91" = the shared T91 photos; "skimage:<name>" = a scikit-image bundled photo (never a held-out one);
    # "set:natural" / "set:faces" = a subset of the training set `edge-export data build` made (set_dir)
    sources: list[str] = Field(default_factory=lambda: ["t91"], min_length=1)
    set_dir: str = "work_cache/train_set"
    hr_patch: int = Field(96, ge=8, le=512)
    batch_size: int = Field(16, ge=1, le=256)

    @field_validator("sources")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from export_tools.data.images import HELD_OUT_SKIMAGE

        for s in v:
            if s in ("t91", "set:natural", "set:faces"):
                continue
            if not s.startswith("skimage:"):
                raise ValueError(f"unknown data source {s!r}; use 't91', 'set:natural', 'set:faces' "
                                 "(the set `edge-export data build` made) or 'skimage:<name>'")
            name = s.split(":", 1)[1]
            if name in HELD_OUT_SKIMAGE or name == "cat":
                raise ValueError(f"{name!r} is a held-out evaluation image and must not be trained on")
        return v


class EvalSpec(_Strict):
    faces: bool = True  # also evaluate on the shared dev faces (needs ../shared)
    seed: int = 1234
    max_side: int = Field(512, ge=16)  # HR images larger than this are centre-cropped (speed)


class PerceptualSpec(_Strict):
    init_from: str  # path of the faithful final.pt
    pixel_weight: float = Field(1.0, ge=0)
    feature_weight: float = Field(0.5, ge=0)
    adv_image_weight: float = Field(5e-3, ge=0)
    adv_feature_weight: float = Field(5e-3, ge=0)
    d_lr: float = Field(1e-4, gt=0)
    feature_channels: int = Field(64, ge=8)
    feature_pretrain_iters: int = Field(400, ge=1)
    image_disc: dict[str, Any] = Field(default_factory=dict)
    feature_disc: dict[str, Any] = Field(default_factory=dict)


class Recipe(_Strict):
    name: str
    stage: Literal["faithful", "perceptual"] = "faithful"
    arch: Literal["srgan_generator", "repsr"] = ARCH
    seed: int = 0
    threads: int = Field(1, ge=0, le=64)
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # auto: CUDA when a GPU is present
    # faithful stage only: continue from this checkpoint of the same generator (a longer schedule)
    init_from: str | None = None
    # init_from holds a smaller RepSR (training-time): grow it into the recipe's wider / deeper one,
    # computing the same function at the start (export_tools/archs/repsr_grow.py)
    init_grow: bool = False
    time_budget_min: float = Field(40.0, gt=0)
    max_iters: int = Field(100_000, ge=1)
    lr: float = Field(5e-4, gt=0)
    lr_min: float = Field(1e-6, ge=0)
    checkpoint_every_s: float = Field(120.0, gt=0)
    log_every: int = Field(200, ge=1)
    model: dict[str, Any] = Field(default_factory=dict)
    data: DataSpec = Field(default_factory=DataSpec)
    degradation: DegradeSpec = Field(default_factory=DegradeSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    perceptual: PerceptualSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        scale = self.model.get("scale", 4)
        if scale != self.degradation.scale:
            raise ValueError(f"model scale {scale} differs from degradation scale {self.degradation.scale}")
        if self.data.hr_patch % scale:
            raise ValueError(f"data.hr_patch {self.data.hr_patch} must be a multiple of the scale {scale}")
        if self.stage == "perceptual" and self.init_from is not None:
            raise ValueError("stage 'perceptual' takes its start checkpoint from perceptual.init_from")
        if self.stage == "perceptual" and self.arch != ARCH:
            raise ValueError(f"stage 'perceptual' trains {ARCH} only, not {self.arch}")
        if self.init_grow and (self.arch != "repsr" or self.init_from is None):
            raise ValueError("init_grow needs arch repsr and an init_from checkpoint to grow")
        if self.stage == "perceptual" and self.perceptual is None:
            raise ValueError("stage 'perceptual' needs a 'perceptual' section (init_from, loss weights)")
        try:
            json.dumps(self.model)
            build(self.arch, **self.model)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid model kwargs {self.model}: {exc}") from exc
        return self


def load_recipe(path: Path) -> Recipe:
    return common.load_recipe(path, Recipe)


def load_training_images(sources: list[str], set_dir: str = "work_cache/train_set") -> tuple[list[np.ndarray], list[str]]:
    """RGB uint8 images and the list of their names (kept in the checkpoint meta)."""
    import skimage.data

    from export_tools.data.build import training_images
    from export_tools.data.images import read_rgb, train_paths

    images, names = [], []
    for src in sources:
        if src.startswith("set:"):
            for p in training_images(Path(set_dir), src.split(":", 1)[1]):
                images.append(read_rgb(p))
                names.append(f"set/{p.relative_to(set_dir)}")
        elif src == "t91":
            for p in train_paths():
                images.append(read_rgb(p))
                names.append(f"t91/{p.name}")
        else:
            name = src.split(":", 1)[1]
            if name == "motorcycle_left":
                img = skimage.data.stereo_motorcycle()[0]
            else:
                fn = getattr(skimage.data, name, None)
                if fn is None:
                    raise ValueError(f"scikit-image has no image {name!r}")
                img = fn()
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            img = np.ascontiguousarray(img[:, :, :3])
            if img.dtype != np.uint8:
                raise ValueError(f"scikit-image image {name!r} is {img.dtype}, not uint8")
            images.append(img)
            names.append(f"skimage/{name}")
    return images, names


# ---------------------------------------------------------------- training


# How long a recipe runs may grow between sessions (a later session gives it more time), and a run
# may move between machines (CPU threads, a GPU); anything else that differs means another
# training, which a checkpoint must not continue.
_EXTENSIBLE = ("time_budget_min", "max_iters", "checkpoint_every_s", "log_every", "device", "threads")


def _resume_key(recipe: dict | None) -> dict | None:
    """The recipe as the current schema reads it (options added since get their defaults), less
    the keys a resumed run may change."""
    if recipe is None:
        return None
    try:
        recipe = Recipe.model_validate(recipe).model_dump(mode="json")
    except ValueError:
        return recipe
    return {k: v for k, v in recipe.items() if k not in _EXTENSIBLE}


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class _Log:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        with self.path.open("a") as f:
            f.write(line + "\n")
        tqdm.write(line)


def train(recipe_path: Path, out_dir: Path | None = None, resume: bool = True,
          stop_at: int | None = None) -> Path:
    """Run a recipe; returns the path of out_dir/final.pt (our checkpoint, arch='srgan_generator').

    stop_at: interrupt after that many iterations, leaving only out_dir/last.pt (returned) to resume.
    """
    recipe = load_recipe(recipe_path)
    out = Path(out_dir) if out_dir is not None else Path("runs") / recipe.name
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(out / "train.log")
    setup(recipe.seed, recipe.threads)
    device = common.resolve_device(recipe.device)
    log(f"training on {device}")

    images, names = load_training_images(recipe.data.sources, recipe.data.set_dir)
    sampler = PatchSampler(images, recipe.degradation, recipe.data.hr_patch, recipe.seed)
    gen = build(recipe.arch, **recipe.model).to(device)
    per = recipe.perceptual

    nets: dict[str, torch.nn.Module] = {"gen": gen}
    feat_net = None
    init_from = per.init_from if recipe.stage == "perceptual" else recipe.init_from
    if init_from is not None:
        init = load_checkpoint(Path(init_from))
        if recipe.init_grow:
            from export_tools.archs.repsr_grow import grow

            if init["arch"] != "repsr" or init["arch_kwargs"].get("deploy"):
                raise ValueError(f"{init_from} holds {init['arch']} {init['arch_kwargs']}: init_grow needs a "
                                 "training-time (unmerged) RepSR checkpoint, such as a run's last.pt")
            small = build("repsr", **init["arch_kwargs"])
            small.load_state_dict(init["state_dict"])
            grow(small, gen)
            log(f"grew {init_from} ({init['arch_kwargs']}) into {gen_kwargs(recipe)}")
        elif init["arch"] != recipe.arch or _full_kwargs(recipe.arch, init["arch_kwargs"]) != gen_kwargs(recipe):
            raise ValueError(f"{init_from} holds {init['arch']} {init['arch_kwargs']}, "
                             f"the recipe's model is {recipe.arch} {gen_kwargs(recipe)}")
        else:
            gen.load_state_dict(init["state_dict"])
    if recipe.stage == "perceptual":
        nets["d_img"] = build("image_discriminator", **per.image_disc).to(device)
        nets["d_feat"] = build("feature_discriminator", in_channels=per.feature_channels,
                               **per.feature_disc).to(device)

    opts = {"gen": torch.optim.Adam(gen.parameters(), lr=recipe.lr, betas=(0.9, 0.99))}
    for k in ("d_img", "d_feat"):
        if k in nets:
            opts[k] = torch.optim.Adam(nets[k].parameters(), lr=per.d_lr, betas=(0.9, 0.99))

    it, elapsed = 0, 0.0
    last = out / "last.pt"
    if resume and last.is_file():
        ck = load_checkpoint(last)
        ts = ck["train_state"]
        if _resume_key(ts.get("recipe")) != _resume_key(recipe.model_dump(mode="json")):
            raise ValueError(f"{last} was written by a different recipe; use another out_dir or resume=False")
        gen.load_state_dict(ck["state_dict"])
        for k, net in nets.items():
            if k != "gen":
                net.load_state_dict(ts["nets"][k])
        for k, opt in opts.items():
            opt.load_state_dict(ts["opts"][k])
        sampler.set_state(ts["sampler"])
        torch.set_rng_state(ts["torch_rng"])
        it, elapsed = int(ts["iter"]), float(ts["elapsed"])
        log(f"resumed from {last} at iteration {it} ({elapsed / 60:.1f} min used)")

    if recipe.stage == "perceptual":
        from export_tools.training.features import FeatureNet, train_feature_net

        feat_path = out / "features.pt"
        if feat_path.is_file():
            feat_net = FeatureNet(per.feature_channels)
            feat_net.load_state_dict(torch.load(feat_path, map_location="cpu"))
            feat_net.eval().requires_grad_(False)
        else:
            fs = PatchSampler(images, recipe.degradation, recipe.data.hr_patch, recipe.seed + 7)
            t0 = time.monotonic()
            feat_net, ae_loss = train_feature_net(lambda: fs.batch(recipe.data.batch_size)[1],
                                                  per.feature_pretrain_iters, per.feature_channels)
            torch.save(feat_net.state_dict(), feat_path)
            log(f"feature autoencoder: {per.feature_pretrain_iters} iters, L1 {ae_loss:.4f}, "
                f"{time.monotonic() - t0:.0f} s")
        feat_net = feat_net.to(device)

    def save_last(state: Progress) -> None:
        save_checkpoint(last, arch=recipe.arch, arch_kwargs=gen_kwargs(recipe), model=gen, train_state={
            "iter": state.it, "elapsed": state.elapsed, "recipe": recipe.model_dump(mode="json"),
            "nets": {k: v.state_dict() for k, v in nets.items() if k != "gen"},
            "opts": {k: o.state_dict() for k, o in opts.items()},
            "sampler": sampler.state(), "torch_rng": torch.get_rng_state(),
        })

    def step(_it: int) -> dict[str, torch.Tensor]:
        lr_np, hr_np = sampler.batch(recipe.data.batch_size)
        lr_t, hr_t = torch.from_numpy(lr_np).to(device), torch.from_numpy(hr_np).to(device)
        sr = gen(lr_t)
        losses: dict[str, torch.Tensor] = {}
        if recipe.stage == "faithful":
            losses["l1"] = (sr - hr_t).abs().mean()
            g_loss = losses["l1"]
        else:
            f_sr, f_hr = feat_net(sr), feat_net(hr_t)
            losses["l1"] = (sr - hr_t).abs().mean()
            losses["feat"] = (f_sr - f_hr).abs().mean()
            losses["adv_img"] = _bce(nets["d_img"](sr), True)
            losses["adv_feat"] = _bce(nets["d_feat"](f_sr), True)
            g_loss = (per.pixel_weight * losses["l1"] + per.feature_weight * losses["feat"]
                      + per.adv_image_weight * losses["adv_img"] + per.adv_feature_weight * losses["adv_feat"])
            for k in ("d_img", "d_feat"):
                nets[k].requires_grad_(False)
        opts["gen"].zero_grad()
        g_loss.backward()
        opts["gen"].step()
        if recipe.stage == "perceptual":
            sr_d, f_sr_d, f_hr_d = sr.detach(), f_sr.detach(), f_hr.detach()
            for k, real, fake in (("d_img", hr_t, sr_d), ("d_feat", f_hr_d, f_sr_d)):
                nets[k].requires_grad_(True)
                d_loss = _bce(nets[k](real), True) + _bce(nets[k](fake), False)
                opts[k].zero_grad()
                d_loss.backward()
                opts[k].step()
                losses[k] = d_loss.detach()
        return losses

    gen.train()
    cfg = LoopConfig(desc=recipe.name, max_iters=recipe.max_iters, budget_s=recipe.time_budget_min * 60.0,
                     log_every=recipe.log_every, checkpoint_every_s=recipe.checkpoint_every_s, stop_at=stop_at)
    state = loop.run(cfg, step, state=Progress(it, elapsed), save=save_last, log=log,
                     schedule=lambda f: loop.cosine(f, recipe.lr, recipe.lr_min), optimizers=[opts["gen"]])
    it, elapsed = state.it, state.elapsed
    if loop.stopped_early(cfg, state):
        log(f"stopped at iteration {it} as asked; resume to continue")
        return last

    gen.eval()
    metrics = evaluate(gen.cpu(), recipe.degradation, seed=recipe.eval.seed, faces=recipe.eval.faces,
                       max_side=recipe.eval.max_side)
    clean = evaluate(gen, DegradeSpec(scale=recipe.degradation.scale), seed=recipe.eval.seed,
                     faces=recipe.eval.faces, max_side=recipe.eval.max_side)
    cctv = evaluate(gen, cctv_eval_spec(recipe.degradation.scale), seed=recipe.eval.seed,
                    faces=recipe.eval.faces, max_side=recipe.eval.max_side)
    log(f"done: {it} iterations in {elapsed / 60:.1f} min; Y-PSNR vs bicubic on held-out images: "
        f"recipe degradation {metrics['mean']['psnr_y']:.2f} vs {metrics['mean']['psnr_y_bicubic']:.2f} dB "
        f"(+{metrics['mean']['gain_db']:.2f}), clean bicubic-down {clean['mean']['psnr_y']:.2f} vs "
        f"{clean['mean']['psnr_y_bicubic']:.2f} dB (+{clean['mean']['gain_db']:.2f}), CCTV "
        f"{cctv['mean']['psnr_y']:.2f} vs {cctv['mean']['psnr_y_bicubic']:.2f} dB (+{cctv['mean']['gain_db']:.2f})")
    (out / "metrics.json").write_text(json.dumps({"recipe_degradation": metrics, "clean": clean, "cctv": cctv},
                                                 indent=2))
    arch_kwargs = gen_kwargs(recipe)
    if hasattr(gen, "merge"):  # re-parameterisable: ship the plain merged net (exact, tested)
        gen.merge()
        arch_kwargs = {**arch_kwargs, "deploy": True}
    final = save_checkpoint(out / "final.pt", arch=recipe.arch, arch_kwargs=arch_kwargs, model=gen, meta={
        "recipe": recipe.model_dump(mode="json"), "init_from": init_from, "iterations": it, "minutes": round(elapsed / 60, 2),
        "training_images": names, "metrics": {"recipe_degradation": metrics["mean"], "clean": clean["mean"], "cctv": cctv["mean"]},
    })
    log(f"wrote {final}")
    return final


def _full_kwargs(arch: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    from export_tools.archs.registry import arch_class

    sig = inspect.signature(arch_class(arch).__init__)
    full = {k: p.default for k, p in sig.parameters.items() if k != "self"}
    full.update(kwargs)
    return json.loads(json.dumps(full))


def gen_kwargs(recipe: Recipe) -> dict[str, Any]:
    """The generator kwargs with defaults filled in, so a checkpoint records the full architecture."""
    return _full_kwargs(recipe.arch, recipe.model)
