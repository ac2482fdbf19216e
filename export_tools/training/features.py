"""A feature extractor we train ourselves, standing in for ImageNet VGG (which cannot be downloaded here).

FeatureNet is the encoder of a small convolutional autoencoder trained to reconstruct high-resolution
training patches (L1). Its encoder maps keep the edges and textures that a reconstruction needs, so
distances between them measure structure rather than raw pixels; the perceptual stage uses them for the
feature loss and as the input of the feature discriminator. Trained once per run, then frozen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FeatureNet(nn.Module):
    """RGB [N,3,H,W] 0..1 -> features [N,C,H/2,W/2]."""

    def __init__(self, channels: int = 64):
        super().__init__()
        half = channels // 2
        self.out_channels = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, half, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(half, half, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(half, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class _Decoder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.body(f)


def train_feature_net(batches, iters: int, channels: int = 64, lr: float = 1e-3,
                      progress=None) -> tuple[FeatureNet, float]:
    """Train the autoencoder on `batches()` -> HR float32 NCHW arrays; returns (frozen encoder, last L1)."""
    if iters < 1:
        raise ValueError(f"feature net needs at least one training iteration, got {iters}")
    enc, dec = FeatureNet(channels), _Decoder(channels)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=lr)
    loss_value = float("nan")
    for _ in range(iters):
        hr = torch.from_numpy(np.asarray(batches()))
        loss = (dec(enc(hr)) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_value = float(loss.detach())
        if progress is not None:
            progress(loss_value)
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc, loss_value
