"""The non-Retinex ablation of the low-light model: one U-Net on the brightened frame, no decomposition.

forward(image [N,3,H,W] RGB 0..1, ratio [N,1]) -> enhanced [N,3,H,W] RGB 0..1, the I/O contract of
KinDEnhancer, so export, INT8, the gate and the agent take either. The frame is first brightened by
the ratio (clamped), then the RestorationNet U-Net of kind.py, fed that frame and the ratio as a
fourth plane, adds its correction (denoising, colour, tone) at 1/scale resolution
(pixel-unshuffle in, pixel-shuffle out). It answers whether the KinD split (decomposition,
reflectance restoration, illumination adjustment) earns its cost against a plain network of the
same restoration size (IAT / LYT-Net style compact models are of this kind).
"""

from __future__ import annotations

import torch
from torch import nn

from export_tools.archs.kind import RestorationNet

RATIO_SCALE = 20.0  # the ratio plane is ratio / 20 (the manifest's ratio range is 1..20)


class UNetEnhancer(nn.Module):
    def __init__(self, width: float = 0.5, levels: int = 3, scale: int = 2) -> None:
        super().__init__()
        self.net = RestorationNet(width, levels, scale)
        self.pad_multiple = self.net.pad_multiple

    def forward(self, image: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        r = ratio.reshape(-1, 1, 1, 1)
        bright = torch.clamp(image * r, 0.0, 1.0)
        plane = torch.ones_like(image[:, :1]) * (r / RATIO_SCALE)
        return self.net(bright, plane)  # clamp(correction + bright, 0, 1)
