"""`edge-export` exit codes and messages: bad input -> 2, gate refusal -> 1, nothing shipped."""

from __future__ import annotations

import shutil

import pytest
from fixtures.export_models import TinySR, seeded, sr_calibration, sr_samples

from export_tools.cli import main
from export_tools.export.onnx import export_model
from export_tools.export.pipeline import quantize_step
from export_tools.export.verify import verify


def test_missing_checkpoint_is_a_clear_input_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "w")]) == 2
    assert "nope.pt not found" in capsys.readouterr().err


def test_not_a_checkpoint_is_refused(tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a torch file")
    assert main(["export", str(bogus), "--out", str(tmp_path / "w")]) == 2
    assert "edge-export: error:" in capsys.readouterr().err


def test_quantize_before_export_says_what_to_run(tmp_path, capsys):
    (tmp_path / "w").mkdir()
    assert main(["quantize", str(tmp_path / "w")]) == 2
    assert "run `edge-export export`" in capsys.readouterr().err


def test_train_with_missing_recipe(tmp_path, capsys):
    assert main(["train", "kind", "--recipe", str(tmp_path / "none.yaml")]) == 2
    assert "recipe" in capsys.readouterr().err


def test_bad_subcommand_argument_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["train", "resnet", "--recipe", "x.yaml"])
    assert exc.value.code == 2


def test_package_refuses_unverified_and_failed_folders(tmp_path, capsys):
    work = tmp_path / "w"
    export_model(seeded(TinySR()), "srgan_generator", work)
    quantize_step(work, calib_feeds=sr_calibration(4))
    models = tmp_path / "models"
    assert main(["package", str(work), "--version", "1.0.0", "--models", str(models)]) == 1
    assert "verify" in capsys.readouterr().err
    verify(work, samples=sr_samples(2), latency_repeats=0, grid=False, max_drop_db=-1.0)  # cannot pass
    assert main(["package", str(work), "--version", "1.0.0", "--models", str(models)]) == 1
    err = capsys.readouterr().err
    assert "quality gate failed" in err and "more than the allowed -1.0 dB" in err
    assert not models.exists()


def test_import_srgan_refuses_the_shipped_models_folder(tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / "x.pth"
    shutil.copy(__file__, ckpt)  # exists; the guard fires before it is read
    monkeypatch.chdir(tmp_path)
    assert main(["import-srgan", str(ckpt), "--out", "models"]) == 2
    assert "shipped models folder" in capsys.readouterr().err
