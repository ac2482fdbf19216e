"""The public SRGAN x4 generator of the leftthomas/SRGAN project (MIT), rebuilt with its exact layer names
so its state_dict loads strictly, and the importer that turns that file into one of our checkpoints.

Topology (the checkpoint that predates block7's change to BatchNorm): conv9x9 64 + PReLU; 5 residual
blocks conv-BN-PReLU-conv-BN + identity; conv3x3 64 + PReLU; long skip from the first block; two
[conv 64->256, PixelShuffle(2), PReLU]; conv9x9 -> 3; output (tanh(x)+1)/2. RGB 0..1 in and out.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class _UpsampleBlock(nn.Module):
    def __init__(self, channels: int, r: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * r * r, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(r)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class LeftThomasGenerator(nn.Module):
    """[N,3,h,w] RGB 0..1 -> [N,3,4h,4w] RGB 0..1 (scale must be a power of two)."""

    def __init__(self, scale: int = 4):
        super().__init__()
        n_up = int(math.log2(scale))
        if scale < 2 or 2**n_up != scale:
            raise ValueError(f"scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.block1 = nn.Sequential(nn.Conv2d(3, 64, 9, padding=4), nn.PReLU())
        self.block2 = _ResidualBlock(64)
        self.block3 = _ResidualBlock(64)
        self.block4 = _ResidualBlock(64)
        self.block5 = _ResidualBlock(64)
        self.block6 = _ResidualBlock(64)
        self.block7 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.PReLU())
        self.block8 = nn.Sequential(*[_UpsampleBlock(64, 2) for _ in range(n_up)],
                                    nn.Conv2d(64, 3, 9, padding=4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.block1(x)
        b7 = self.block7(self.block6(self.block5(self.block4(self.block3(self.block2(b1))))))
        return (torch.tanh(self.block8(b1 + b7)) + 1.0) / 2.0


def import_leftthomas(checkpoint: Path, out: Path) -> Path:
    """Strict-load the published state_dict and write our checkpoint (arch='srgan_leftthomas') to `out`."""
    from export_tools.training.common import save_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"SRGAN checkpoint {checkpoint} not found")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that is not a plain tensor dict, or not a torch file at all
        raise ValueError(f"{checkpoint} is not a PyTorch state_dict: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{checkpoint} does not hold a state_dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    model = LeftThomasGenerator(scale=4)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{checkpoint} does not match the leftthomas SRGAN x4 topology: {exc}") from exc
    model.eval()
    return save_checkpoint(Path(out), arch="srgan_leftthomas", arch_kwargs={"scale": 4}, model=model, meta={
        "source": checkpoint.name, "origin": "leftthomas/SRGAN (MIT), trained on VOC2012",
        "tensors": len(state), "io": "RGB 0..1 NCHW -> RGB 0..1 NCHW, x4",
    })
