"""Training plumbing shared by the trainers: seeding, threads, checkpoints with resume."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import yaml
from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


def load_recipe(path: Path, model: type[T]) -> T:
    """Read a YAML recipe and validate it with its pydantic model (extra keys are refused)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"recipe {path} must be a YAML mapping")
    return model.model_validate(data)


def setup(seed: int, threads: int = 0) -> None:
    """Seed every RNG; threads=0 keeps torch's default (all cores)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """cpu, cuda (refused with a clear error when no GPU is visible) or auto (cuda if present)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the recipe asks for device cuda but torch sees no GPU here; "
                           "use device: auto (or cpu) to train on the CPU")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


def save_checkpoint(path: Path, *, arch: str, arch_kwargs: dict, model: torch.nn.Module,
                    meta: dict[str, Any] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Atomically write {"arch", "arch_kwargs", "state_dict", "meta", "train_state"}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
        "train_state": train_state or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "arch" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"checkpoint {path} is not one of ours (needs 'arch' and 'state_dict')")
    return ckpt


def build_from_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the exportable module from a checkpoint, in eval mode."""
    from export_tools.archs.registry import build

    ckpt = load_checkpoint(path)
    model = build(ckpt["arch"], **ckpt["arch_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
