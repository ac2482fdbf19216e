"""A tiny SR training run: recipe validation, progress, resume, final checkpoint and evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError

from export_tools.export.metrics import PSNR_CAP_DB, y_psnr
from export_tools.training.common import build_from_checkpoint, load_checkpoint
from export_tools.training.sr_eval import evaluate
from export_tools.training.srgan import Recipe, load_recipe, train

TINY = {
    "name": "tiny", "threads": 1, "max_iters": 6, "log_every": 2, "checkpoint_every_s": 1000,
    "model": {"scale": 4, "n_blocks": 1, "channels": 8, "srfeat_skip": True, "upsampler": "direct"},
    "data": {"sources": ["skimage:camera"], "hr_patch": 32, "batch_size": 2},
    "degradation": {"scale": 4, "downsample": ["area", "bicubic"], "noise_prob": 0.5},
    "eval": {"faces": False, "max_side": 64},
}


def _write(tmp_path: Path, name: str, **over) -> Path:
    data = {**TINY, **over}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_recipe_rejects_unknown_keys_held_out_images_and_scale_mismatch(tmp_path):
    with pytest.raises(ValidationError):
        Recipe.model_validate({**TINY, "learning_rate": 1e-3})
    with pytest.raises(ValidationError, match="held-out"):
        Recipe.model_validate({**TINY, "data": {**TINY["data"], "sources": ["skimage:astronaut"]}})
    with pytest.raises(ValidationError, match="scale"):
        Recipe.model_validate({**TINY, "degradation": {"scale": 2}})
    with pytest.raises(ValidationError, match="perceptual"):
        Recipe.model_validate({**TINY, "stage": "perceptual"})
    with pytest.raises(FileNotFoundError):
        load_recipe(tmp_path / "missing.yaml")


def test_shipped_recipes_validate(repo_root):
    for name in ("srgan_faithful.yaml", "srgan_perceptual.yaml"):
        recipe = load_recipe(repo_root / "configs" / "train" / name)
        assert recipe.degradation.scale == recipe.model["scale"] == 4
    for name in ("face_sr_rep.yaml", "face_sr_v2.yaml", "face_sr_v2_gpu.yaml", "face_sr_v3.yaml", "face_sr_v4.yaml",
                 "face_sr_ab_plain.yaml", "face_sr_ab_longskip.yaml"):
        recipe = load_recipe(repo_root / "configs" / "train" / name)
        assert recipe.arch == "repsr" and recipe.degradation.scale == 4


def test_tiny_train_resume_equals_straight_run(tmp_path):
    straight = train(_write(tmp_path, "a"), tmp_path / "straight", resume=False)
    ck = load_checkpoint(straight)
    assert ck["arch"] == "srgan_generator" and ck["meta"]["iterations"] == 6
    assert "skimage/camera" in ck["meta"]["training_images"]
    assert {"psnr_y", "psnr_y_bicubic", "gain_db"} <= set(ck["meta"]["metrics"]["clean"])
    assert (tmp_path / "straight" / "train.log").read_text().count("iter ") == 3

    # interrupted after 3 iterations, then resumed to 6: identical weights to the straight run
    part = tmp_path / "resumed"
    last = train(_write(tmp_path, "a"), part, resume=False, stop_at=3)
    assert last.name == "last.pt" and not (part / "final.pt").exists()
    assert load_checkpoint(last)["train_state"]["iter"] == 3
    with pytest.raises(ValueError, match="different recipe"):
        train(_write(tmp_path, "b", lr=1e-3), part, resume=True)
    resumed = train(_write(tmp_path, "a"), part, resume=True)
    assert "resumed from" in (part / "train.log").read_text()
    a, b = load_checkpoint(straight)["state_dict"], load_checkpoint(resumed)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    model, _ = build_from_checkpoint(resumed)
    assert model.scale == 4 and not model.training
    assert {"clean", "cctv", "recipe_degradation"} <= set(load_checkpoint(resumed)["meta"]["metrics"])

    # a later session may give the same recipe more time or iterations: it continues, from 6 to 8
    longer = train(_write(tmp_path, "a", max_iters=8, time_budget_min=90), part, resume=True)
    assert load_checkpoint(longer)["meta"]["iterations"] == 8
    assert "resumed from" in (part / "train.log").read_text().split("wrote")[-2]


def test_tiny_perceptual_stage_runs_from_faithful(tmp_path):
    faithful = train(_write(tmp_path, "f", max_iters=2), tmp_path / "f", resume=False)
    per = {"init_from": str(faithful), "feature_channels": 8, "feature_pretrain_iters": 2,
           "image_disc": {"base": 4, "n_stages": 1}, "feature_disc": {"base": 4, "n_stages": 1}}
    out = train(_write(tmp_path, "p", stage="perceptual", max_iters=2, perceptual=per), tmp_path / "p")
    assert load_checkpoint(out)["meta"]["iterations"] == 2
    assert (tmp_path / "p" / "features.pt").is_file()
    log = (tmp_path / "p" / "train.log").read_text()
    assert "adv_img" in log and "d_feat" in log


def test_evaluate_identity_scale_and_psnr():
    import numpy as np

    a = np.full((8, 8, 3), 100, np.uint8)
    assert y_psnr(a, a, 0) == PSNR_CAP_DB
    assert y_psnr(a, a + 10, 0) < 30
    # an untrained model with a global bicubic skip and a zeroed body scores like bicubic
    from export_tools.archs.srgan import SRGANGenerator

    g = SRGANGenerator(scale=4, n_blocks=1, channels=8, upsampler="direct")
    torch.nn.init.zeros_(g.upsample[0].weight)
    torch.nn.init.zeros_(g.upsample[0].bias)
    rng = np.random.default_rng(0)
    imgs = {"x": np.clip(rng.normal(128, 40, (48, 48, 3)), 0, 255).astype(np.uint8)}
    r = evaluate(g, images=imgs)
    assert abs(r["mean"]["gain_db"]) < 0.3  # torch vs OpenCV bicubic differ only slightly


def test_faithful_continuation_starts_from_checkpoint_and_refuses_other_arch(tmp_path):
    first = train(_write(tmp_path, "f", max_iters=2), tmp_path / "f", resume=False)
    cont = train(_write(tmp_path, "c", max_iters=1, init_from=str(first)), tmp_path / "c", resume=False)
    assert load_checkpoint(cont)["meta"]["init_from"] == str(first)
    other = {**TINY["model"], "channels": 12}
    with pytest.raises(ValueError, match="holds srgan_generator"):
        train(_write(tmp_path, "o", max_iters=1, init_from=str(first), model=other), tmp_path / "o")


def test_repsr_trains_resumes_and_ships_merged_plain_and_exportable(tmp_path):
    over = {"arch": "repsr", "model": {"channels": 8, "blocks": 1}}
    straight = train(_write(tmp_path, "r", **over), tmp_path / "straight", resume=False)
    part = tmp_path / "resumed"
    train(_write(tmp_path, "r", **over), part, resume=False, stop_at=3)
    resumed = train(_write(tmp_path, "r", **over), part, resume=True)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["arch"] == "repsr" and a["arch_kwargs"]["deploy"] is True  # saved merged
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    model, _ = build_from_checkpoint(straight)
    assert model.is_merged and not model.training
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.kernel_size in ((3, 3), (1, 1)) for c in convs)
    x = torch.rand(1, 3, 11, 13)
    y = model(x)
    assert y.shape == (1, 3, 44, 52) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValidationError, match="perceptual"):
        Recipe.model_validate({**TINY, **over, "stage": "perceptual", "perceptual": {"init_from": "x.pt"}})


def test_init_grow_starts_a_larger_repsr_where_the_smaller_one_ended(tmp_path):
    small_over = {"arch": "repsr", "model": {"channels": 8, "blocks": 1, "anchor": "bicubic"}}
    small_final = train(_write(tmp_path, "s", **small_over), tmp_path / "s", resume=False)
    big_over = {"arch": "repsr", "model": {"channels": 12, "blocks": 2, "anchor": "bicubic"},
                "init_from": str(tmp_path / "s" / "last.pt"), "init_grow": True,
                "max_iters": 1, "lr": 1e-9, "lr_min": 0.0}  # one step that barely moves the weights
    big_final = train(_write(tmp_path, "b", **big_over), tmp_path / "b", resume=False)
    small, _ = build_from_checkpoint(small_final)
    big, ckpt = build_from_checkpoint(big_final)
    assert ckpt["arch_kwargs"]["channels"] == 12 and ckpt["arch_kwargs"]["blocks"] == 2
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(big(x), small(x), atol=1e-4, rtol=0)
    # a merged final.pt cannot be grown, and init_grow needs something to grow
    with pytest.raises(ValueError, match="unmerged"):
        train(_write(tmp_path, "m", **{**big_over, "init_from": str(small_final)}), tmp_path / "m")
    with pytest.raises(ValidationError, match="init_grow needs"):
        Recipe.model_validate({**TINY, **big_over, "init_from": None})


def test_training_set_source_needs_the_built_set(tmp_path):
    path = _write(tmp_path, "s", data={**TINY["data"], "sources": ["set:natural"], "set_dir": str(tmp_path / "none")})
    with pytest.raises(Exception, match="edge-export data build"):
        train(path, tmp_path / "out", resume=False)


def test_device_auto_trains_where_it_can_and_cuda_without_gpu_is_refused(tmp_path):
    from export_tools.training.common import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    out = train(_write(tmp_path, "d", device="auto", max_iters=2), tmp_path / "d", resume=False)
    assert load_checkpoint(out)["meta"]["iterations"] == 2
    assert f"training on {expected}" in (tmp_path / "d" / "train.log").read_text()
    with pytest.raises(ValidationError):
        Recipe.model_validate({**TINY, "device": "tpu"})
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            train(_write(tmp_path, "c", device="cuda", max_iters=2), tmp_path / "c", resume=False)


def test_gpu_recipe_runs_a_few_steps_here(tmp_path, repo_root):
    """The GPU recipe as shipped (device auto), on this machine's CPU for 3 steps: only the data
    (a bundled photo instead of the built set) and the evaluation size are swapped for speed."""
    data = yaml.safe_load((repo_root / "configs" / "train" / "face_sr_v2_gpu.yaml").read_text())
    assert data["device"] == "auto" and data["arch"] == "repsr"
    data["data"] = {**data["data"], "sources": ["skimage:camera"], "batch_size": 4}
    data["eval"] = {"faces": False, "max_side": 64}
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    last = train(path, tmp_path / "gpu", resume=False, stop_at=3)
    assert load_checkpoint(last)["train_state"]["iter"] == 3
