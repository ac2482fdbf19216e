"""KinD trainer: a tiny real run writes a checkpoint, resumes mid-stage, rebuilds the enhancer; evaluation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from export_tools.archs.kind import KinDEnhancer
from export_tools.data.lowlight import NightPatches
from export_tools.training import kind as kind_training
from export_tools.training.common import build_from_checkpoint, load_checkpoint

TINY_ARCH = {"width": 0.25, "restore_levels": 1, "decom_scale": 1, "restore_scale": 2, "illum_scale": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        img = np.full((48, 64, 3), 40, np.uint8)
        for _ in range(6):
            colour = tuple(int(c) for c in rng.integers(60, 255, 3))
            centre = (int(rng.integers(0, 64)), int(rng.integers(0, 48)))
            cv2.circle(img, centre, int(rng.integers(5, 20)), colour, -1)
        cv2.imwrite(str(folder / f"img{k}.png"), img)
    return folder


def _recipe(tmp_path: Path, steps: int = 4, **extra) -> Path:
    stage = {"steps": steps, "max_minutes": 1.0, "lr": 1e-3, "patch": 32, "batch": 2}
    data = {"seed": 0, "threads": 1, "out_dir": str(tmp_path / "run"), "arch_kwargs": TINY_ARCH,
            "images": str(_write_images(tmp_path / "images")), "checkpoint_every": 2, "log_every": 2,
            "decom": stage, "restore": stage, "adjust": stage, "finetune": stage, "eval_seeds": 1, **extra}
    path = tmp_path / "kind_tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def small_eval(monkeypatch):
    """Evaluate on one small synthetic image instead of the full held-out set (keeps the test fast)."""
    rng = np.random.default_rng(3)
    photo = np.clip(rng.normal(150, 40, (40, 56, 3)), 0, 255).astype(np.uint8)
    monkeypatch.setattr(kind_training.image_sets, "held_out_images", lambda: {"synthetic": photo})


def test_tiny_run_writes_final_checkpoint_that_rebuilds_the_enhancer(tmp_path, small_eval):
    final = kind_training.train(_recipe(tmp_path), resume=False)
    assert final == tmp_path / "run" / "final.pt" and final.is_file()
    model, ckpt = build_from_checkpoint(final)
    assert isinstance(model, KinDEnhancer) and ckpt["arch"] == "kind_enhancer"
    assert ckpt["meta"]["stages"]["restore"]["steps"] == 4
    assert set(ckpt["meta"]["metrics"]["mean"]) >= {"gamma", "clahe", "kind", "gain_over_best_baseline"}
    assert (tmp_path / "run" / "train.log").read_text().count("done:") == 4
    # training changed the weights of every sub-network
    fresh = KinDEnhancer(**TINY_ARCH).state_dict()
    for prefix in ("decom.", "restore.", "adjust."):
        key = next(k for k in fresh if k.startswith(prefix) and k.endswith("weight"))
        assert not torch.equal(fresh[key], model.state_dict()[key])


def test_interrupted_run_resumes_from_latest(tmp_path, small_eval, monkeypatch):
    recipe = _recipe(tmp_path, steps=4)
    calls = {"n": 0}
    real_batch = NightPatches.batch

    def failing_batch(self, n):
        calls["n"] += 1
        if calls["n"] == 4 + 3:  # stage 2 (restore), 3rd step: after its checkpoint at step 2
            raise KeyboardInterrupt
        return real_batch(self, n)

    monkeypatch.setattr(NightPatches, "batch", failing_batch)
    with pytest.raises(KeyboardInterrupt):
        kind_training.train(recipe, resume=False)
    state = load_checkpoint(tmp_path / "run" / "latest.pt")["train_state"]
    assert state["done"] == ["decom"] and state["stage"] == "restore" and state["step"] == 2
    monkeypatch.setattr(NightPatches, "batch", real_batch)
    final = kind_training.train(recipe, resume=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resuming stage restore at step 2" in log
    meta = load_checkpoint(final)["meta"]
    assert meta["stages"]["decom"]["steps"] == 4 and meta["stages"]["restore"]["steps"] == 4


def test_recipe_rejects_unknown_keys_and_bad_patch(tmp_path):
    with pytest.raises(ValidationError):
        kind_training.load_recipe(_recipe(tmp_path, learning_rate=1.0))
    bad = _recipe(tmp_path)
    data = yaml.safe_load(bad.read_text())
    data["restore"]["patch"] = 30  # not a multiple of pad_multiple (4)
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="multiple"):
        kind_training.train(bad, resume=False)


def test_shipped_recipe_validates(repo_root):
    recipe = kind_training.load_recipe(repo_root / "configs" / "train" / "kind.yaml")
    model = KinDEnhancer(**recipe.arch_kwargs)
    for stage in ("decom", "restore", "adjust"):
        assert getattr(recipe, stage).patch % model.pad_multiple == 0


def test_evaluate_reports_every_method(small_eval):
    torch.manual_seed(0)
    result = kind_training.evaluate(KinDEnhancer(**TINY_ARCH), seeds=2)
    assert len(result["rows"]) == 2
    for key in ("input", "gamma", "clahe", "gamma_clahe", "kind"):
        assert 0 < result["mean"][key] < 99


def test_camera_synthesis_and_colour_term_train_and_the_colour_term_measures_colour(tmp_path, small_eval,
                                                                                     repo_root):
    final = kind_training.train(_recipe(tmp_path, steps=2, synthesis="camera", chroma_weight=0.5), resume=False)
    meta = load_checkpoint(final)["meta"]
    assert meta["recipe"]["synthesis"] == "camera" and meta["stages"]["finetune"]["steps"] == 2
    x = torch.rand(2, 3, 8, 8) * 0.8 + 0.1
    assert float(kind_training.chroma_loss(x * 0.5, x)) < 1e-6  # brightness alone is no colour error
    cast = x * torch.tensor([1.2, 1.0, 0.8]).reshape(1, 3, 1, 1)
    assert float(kind_training.chroma_loss(cast, x)) > 0.01
    with pytest.raises(ValidationError):
        kind_training.load_recipe(_recipe(tmp_path, synthesis="fancy"))
    recipe = kind_training.load_recipe(repo_root / "configs" / "train" / "kind_v2.yaml")
    assert recipe.synthesis == "camera" and recipe.images == "set" and recipe.chroma_weight > 0
    model = KinDEnhancer(**recipe.arch_kwargs)
    assert all(getattr(recipe, s).patch % model.pad_multiple == 0 for s in ("decom", "restore", "adjust"))


def test_device_auto_trains_where_it_can_and_cuda_without_gpu_is_refused(tmp_path, small_eval):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    final = kind_training.train(_recipe(tmp_path, steps=2, device="auto"), resume=False)
    assert f"training on {expected}" in (tmp_path / "run" / "train.log").read_text()
    model, _ = build_from_checkpoint(final)
    assert next(model.parameters()).device.type == "cpu"  # checkpoints always load on the CPU
    with pytest.raises(ValidationError):
        kind_training.load_recipe(_recipe(tmp_path, device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            kind_training.train(_recipe(tmp_path / "c", steps=2, device="cuda"), resume=False)


def test_gpu_recipe_runs_a_few_steps_here(tmp_path, small_eval, repo_root):
    """The GPU recipe as shipped (device auto, the v2 network and camera synthesis), on this
    machine's CPU for 2 steps a stage: only the images, the batch and the patch are swapped for speed."""
    data = yaml.safe_load((repo_root / "configs" / "train" / "kind_v2_gpu.yaml").read_text())
    v2 = yaml.safe_load((repo_root / "configs" / "train" / "kind_v2.yaml").read_text())
    assert data["device"] == "auto" and data["arch_kwargs"] == v2["arch_kwargs"]
    assert data["synthesis"] == v2["synthesis"] == "camera" and data["chroma_weight"] == v2["chroma_weight"]
    for stage in ("decom", "restore", "adjust", "finetune"):
        data[stage] = {**data[stage], "steps": 2, "batch": 2, "patch": 32}
    data.update(images=str(_write_images(tmp_path / "images")), out_dir=str(tmp_path / "gpu"), eval_seeds=1)
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    final = kind_training.train(path, resume=False)
    meta = load_checkpoint(final)["meta"]
    assert all(meta["stages"][s]["steps"] == 2 for s in ("decom", "restore", "adjust", "finetune"))


def test_evaluate_on_camera_true_night_frames(small_eval):
    torch.manual_seed(0)
    classic = kind_training.evaluate(KinDEnhancer(**TINY_ARCH), seeds=1)
    camera = kind_training.evaluate(KinDEnhancer(**TINY_ARCH), seeds=1, synthesis="camera")
    assert camera["rows"][0]["codec"].startswith("jpeg q")  # EVAL_SPEC always compresses
    assert camera["mean"]["input"] != classic["mean"]["input"]
    assert 0 < camera["mean"]["kind"] < 99


def test_unet_ablation_trains_resumes_and_exports_with_the_low_light_contract(tmp_path, repo_root):
    """The non-Retinex ablation: a tiny run writes a checkpoint that rebuilds, the shipped recipe
    validates, and the network keeps the (image, ratio) -> image contract in range."""
    from export_tools.archs.unet_ll import UNetEnhancer
    from export_tools.export.tasks import task_for_arch
    from export_tools.training import common, lowlight_unet

    data = {"threads": 1, "out_dir": str(tmp_path / "u"), "arch_kwargs": {"width": 0.25, "levels": 1, "scale": 2},
            "images": str(_write_images(tmp_path / "images")), "steps": 3, "max_minutes": 1.0, "patch": 32,
            "batch": 2, "checkpoint_every": 2}
    path = tmp_path / "unet.yaml"
    path.write_text(yaml.safe_dump(data))
    final = lowlight_unet.train(path, resume=False)
    model, ckpt = build_from_checkpoint(final)
    assert isinstance(model, UNetEnhancer) and ckpt["meta"]["stages"]["end_to_end"]["steps"] == 3
    assert task_for_arch(ckpt["arch"]).task == "low_light"
    data["steps"] = 5
    path.write_text(yaml.safe_dump(data))
    lowlight_unet.train(path, resume=True)
    assert "resumed from" in (tmp_path / "u" / "train.log").read_text()
    assert load_checkpoint(tmp_path / "u" / "final.pt")["meta"]["stages"]["end_to_end"]["steps"] == 5
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32) * 0.1, torch.tensor([[5.0]]))
    assert out.shape == (1, 3, 32, 32) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    low, high = torch.full((2, 3, 4, 4), 0.1), torch.full((2, 3, 4, 4), 0.5)
    assert torch.allclose(lowlight_unet.max_channel_ratio(low, high), torch.full((2, 1), 5.0))
    shipped = common.load_recipe(repo_root / "configs" / "train" / "lowlight_unet.yaml", lowlight_unet.UNetRecipe)
    assert shipped.patch % UNetEnhancer(**shipped.arch_kwargs).pad_multiple == 0


def test_init_from_continues_a_trained_run_with_only_the_stages_it_names(tmp_path, small_eval):
    """A finetune-only continuation (init_from + one stage): starts from the other run's weights,
    leaves the frozen decomposition as it was, trains the rest, and refuses a mismatched network."""
    first = kind_training.train(_recipe(tmp_path / "a", steps=2), resume=False)
    start = load_checkpoint(first)["state_dict"]
    stage = {"steps": 3, "max_minutes": 1.0, "lr": 1e-3, "patch": 32, "batch": 2}
    data = yaml.safe_load(_recipe(tmp_path / "b").read_text())
    for s in ("decom", "restore", "adjust"):
        del data[s]
    data.update(init_from=str(first), finetune=stage, out_dir=str(tmp_path / "cont"))
    path = tmp_path / "cont.yaml"
    path.write_text(yaml.safe_dump(data))
    final = kind_training.train(path, resume=False)
    ckpt = load_checkpoint(final)
    assert ckpt["meta"]["init_from"] == str(first)
    assert list(ckpt["meta"]["stages"]) == ["finetune"] and ckpt["meta"]["stages"]["finetune"]["steps"] == 3
    after = ckpt["state_dict"]
    assert all(torch.equal(after[k], start[k]) for k in start if k.startswith("decom."))
    assert any(not torch.equal(after[k], start[k]) for k in start if k.startswith("restore."))
    # the continuation starts from the trained weights, not from random ones
    fresh = KinDEnhancer(**TINY_ARCH).state_dict()
    assert all(torch.equal(after[k], start[k]) and not torch.equal(after[k], fresh[k])
               for k in start if k.startswith("decom.") and start[k].dtype.is_floating_point and start[k].numel() > 1)

    data.update(arch_kwargs={**TINY_ARCH, "width": 0.5}, out_dir=str(tmp_path / "bad"))
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="holds kind_enhancer"):
        kind_training.train(path, resume=False)
    del data["init_from"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError, match="need a section unless"):
        kind_training.load_recipe(path)


def test_finetune_decom_trains_the_decomposition_end_to_end(tmp_path, small_eval):
    """finetune_decom: the finetune stage moves the decomposition too, and its loss is the
    enhanced frame's (the decomposition's gradient comes through the enhanced output)."""
    first = kind_training.train(_recipe(tmp_path / "a", steps=2), resume=False)
    start = load_checkpoint(first)["state_dict"]
    data = yaml.safe_load(_recipe(tmp_path / "b").read_text())
    for s in ("decom", "restore", "adjust"):
        del data[s]
    data.update(init_from=str(first), finetune={"steps": 3, "max_minutes": 1.0, "lr": 1e-3, "patch": 32, "batch": 2},
                out_dir=str(tmp_path / "joint"), finetune_decom=True)
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(data))
    after = load_checkpoint(kind_training.train(path, resume=False))["state_dict"]
    assert any(not torch.equal(after[k], start[k]) for k in start if k.startswith("decom."))
    model, _ = build_from_checkpoint(first)
    low, high = torch.rand(2, 3, 32, 32) * 0.1, torch.rand(2, 3, 32, 32)
    loss = kind_training.stage_loss(model, "finetune", low, high, finetune_decom=True)
    loss.backward()
    assert all(p.grad is not None for p in model.decom.parameters())
    with torch.no_grad():  # same loss as the frozen-decomposition finetune: only the gradient differs
        frozen = kind_training.stage_loss(model, "finetune", low, high)
    assert abs(float(loss) - float(frozen)) < 1e-5


def test_ssim_weight_scales_only_the_structure_term():
    from export_tools.training import losses
    torch.manual_seed(0)
    out, high = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    base = kind_training.enhancement_loss(out, high)
    heavy = kind_training.enhancement_loss(out, high, ssim_weight=1.5)
    assert float(heavy - base) == pytest.approx(float(losses.ssim_loss(out, high)), rel=1e-5)
    assert float(losses.ssim_loss(out, high)) > 0.1  # random images: the term is not negligible
    with pytest.raises(ValidationError):
        kind_training.KinDRecipe(ssim_weight=-1, init_from="x", finetune={"steps": 1, "max_minutes": 1, "lr": 1e-3})


def test_set_subsets_choose_the_photos_of_the_built_set(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("export_tools.training.srgan.load_training_images",
                        lambda sources, set_dir: calls.append((sources, set_dir)) or ([np.zeros((4, 4, 3), np.uint8)], ["x"]))
    data = yaml.safe_load(_recipe(tmp_path).read_text())
    data.update(images="set", set_dir="SET", set_subsets=["natural", "faces"])
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump(data))
    kind_training.training_images_for(kind_training.load_recipe(path))
    assert calls == [(["set:natural", "set:faces"], "SET")]
    data["set_subsets"] = ["portraits"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError):
        kind_training.load_recipe(path)


def test_the_unet_ablation_reads_the_same_image_selection(tmp_path, monkeypatch):
    """The U-Net ablation's recipe takes the KinD recipe's image selection (set_subsets included)."""
    from export_tools.training import lowlight_unet

    calls = []
    monkeypatch.setattr("export_tools.training.srgan.load_training_images",
                        lambda sources, set_dir: calls.append(sources) or ([np.zeros((4, 4, 3), np.uint8)], ["x"]))
    recipe = lowlight_unet.UNetRecipe(steps=1, max_minutes=1.0, set_subsets=["faces"])
    kind_training.training_images_for(recipe)
    assert calls == [["set:faces"]]
