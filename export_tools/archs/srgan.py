"""SRGAN-style face super-resolution generator and the two discriminators (pure nn.Module, no training).

Generator (Ledig et al. 2017, compact): conv head -> residual blocks (BatchNorm optional; the shipped
compact one has none) -> either a conv + long skip from the head (SRGAN) or, with `srfeat_skip`, the
SRFeat long skips (Park et al. 2018): every residual block's output goes through its own 1x1 conv and
all of them are summed with the head features before upsampling -> pixel-shuffle upsampling -> conv
to RGB, plus an optional global bicubic/bilinear skip of the input.
I/O: [N,3,h,w] RGB 0..1 -> [N,3,s*h,s*w] RGB 0..1 (clamped in eval mode). Exports to ONNX with dynamic h, w.

Discriminators (training only): ImageDiscriminator judges RGB images; FeatureDiscriminator judges
feature maps of a feature extractor (the feature-domain GAN of SRFeat / KR 10-2169242).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Act = Literal["relu", "prelu", "lrelu"]


def _act(kind: str, channels: int = 1) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return nn.PReLU(1)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    raise ValueError(f"unknown activation {kind!r}; use relu, prelu or lrelu")


class ResidualBlock(nn.Module):
    """conv-(BN)-act-conv-(BN) + identity, with an optional residual scale (EDSR)."""

    def __init__(self, channels: int, batch_norm: bool, act: str, res_scale: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(_act(act, channels))
        layers.append(nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        self.body = nn.Sequential(*layers)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.res_scale != 1.0:
            out = out * self.res_scale
        return x + out


def _cubic(x: float, a: float = -0.75) -> float:
    x = abs(x)
    if x <= 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return 0.0


def _phase_taps(scale: int, mode: str) -> list[list[float]]:
    """Per output phase p (0..scale-1), 5 weights on input offsets -2..+2 that reproduce
    F.interpolate(mode, align_corners=False) upsampling (torch's cubic a = -0.75)."""
    rows = []
    for p in range(scale):
        src = (p + 0.5) / scale - 0.5  # source coordinate relative to the input pixel
        fl = math.floor(src)
        t = src - fl
        w = [0.0] * 5
        if mode == "bicubic":
            for off in (-1, 0, 1, 2):
                w[fl + off + 2] += _cubic(t - off)
        else:  # bilinear
            w[fl + 2] += 1.0 - t
            w[fl + 3] += t
        rows.append(w)
    return rows


class PhaseUpsample(nn.Module):
    """Bicubic/bilinear upsampling as edge padding + a fixed 5x5 grouped conv to scale^2 phases.

    Exactly F.interpolate(..., align_corners=False) (borders included: edge padding is torch's index
    clamping), but it exports as Pad + Conv, which ONNX Runtime and OpenVINO run far faster than a
    cubic Resize/Interpolate node. forward() returns the phases, [N, C*s^2, h, w], ready for
    PixelShuffle(s), so a caller can add them to other phase-ordered features first. The kernel is
    a non-persistent buffer: checkpoints do not change.
    """

    def __init__(self, scale: int, mode: str, channels: int = 3):
        super().__init__()
        taps = torch.tensor(_phase_taps(scale, mode), dtype=torch.float32)  # [s, 5]
        kernel = taps[:, None, :, None] * taps[None, :, None, :]  # [s(py), s(px), 5, 5]
        kernel = kernel.reshape(scale * scale, 1, 5, 5).repeat(channels, 1, 1, 1)
        self.register_buffer("kernel", kernel, persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.kernel, groups=self.channels)


class SRGANGenerator(nn.Module):
    """Compact SRGAN/SRFeat generator.

    keep_float: ONNX node-name prefixes that INT8 quantization must leave in float: the fixed
    interpolation kernel of the global skip carries the whole picture, and 8 bits there cost
    ~0.15 dB for no speed.

    scale: 2, 3 or 4. upsampler: "progressive" = SRGAN's [conv C->C*r^2, PixelShuffle(r), act] stages
    (x2 twice for x4) then a conv to RGB at full size; "direct" = one conv C->3*s^2 at low resolution and
    PixelShuffle(s) (ESPCN-style, far cheaper on the CPU). global_skip adds an upsampled copy of the input.
    """

    keep_float = ("/skip_up/",)

    def __init__(self, scale: int = 4, n_blocks: int = 8, channels: int = 32, srfeat_skip: bool = False,
                 batch_norm: bool = False, act: Act = "relu", upsampler: str = "progressive",
                 head_kernel: int = 3, global_skip: str = "bicubic", res_scale: float = 1.0):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        if n_blocks < 1 or channels < 4:
            raise ValueError(f"need n_blocks >= 1 and channels >= 4, got {n_blocks}, {channels}")
        if upsampler not in ("progressive", "direct"):
            raise ValueError(f"upsampler must be 'progressive' or 'direct', got {upsampler!r}")
        if global_skip not in ("bicubic", "bilinear", "none"):
            raise ValueError(f"global_skip must be bicubic, bilinear or none, got {global_skip!r}")
        if head_kernel % 2 != 1:
            raise ValueError(f"head_kernel must be odd, got {head_kernel}")
        self.scale = scale
        self.srfeat_skip = srfeat_skip
        self.global_skip = global_skip
        self.head = nn.Sequential(nn.Conv2d(3, channels, head_kernel, padding=head_kernel // 2), _act(act))
        self.blocks = nn.ModuleList(ResidualBlock(channels, batch_norm, act, res_scale) for _ in range(n_blocks))
        if srfeat_skip:
            # SRFeat: a learned 1x1 weighting of every block output, all summed into the long skip
            self.skips = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(n_blocks))
            self.body_tail = None
        else:
            self.skips = None
            tail: list[nn.Module] = [nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)]
            if batch_norm:
                tail.append(nn.BatchNorm2d(channels))
            self.body_tail = nn.Sequential(*tail)
        if upsampler == "progressive":
            stages: list[nn.Module] = []
            for r in ([2, 2] if scale == 4 else [scale]):
                stages += [nn.Conv2d(channels, channels * r * r, 3, padding=1), nn.PixelShuffle(r), _act(act)]
            stages.append(nn.Conv2d(channels, 3, 3, padding=1))
        else:
            stages = [nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.upsample = nn.Sequential(*stages)
        self.direct = upsampler == "direct"
        self.skip_up = PhaseUpsample(scale, global_skip) if global_skip != "none" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        feat = head
        if self.skips is not None:
            total = head
            for block, skip in zip(self.blocks, self.skips, strict=True):
                feat = block(feat)
                total = total + skip(feat)
            feat = total
        else:
            for block in self.blocks:
                feat = block(feat)
            feat = head + self.body_tail(feat)
        if self.skip_up is None:
            out = self.upsample(feat)
        elif self.direct:  # both branches are phase-ordered: add them, then one PixelShuffle
            out = F.pixel_shuffle(self.upsample[0](feat) + self.skip_up(x), self.scale)
        else:
            out = self.upsample(feat) + F.pixel_shuffle(self.skip_up(x), self.scale)
        if not self.training:
            out = out.clamp(0.0, 1.0)
        return out


def _d_block(cin: int, cout: int, stride: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class _ConvDiscriminator(nn.Module):
    """VGG-like strided conv stack -> global average pool -> linear logit (any input size)."""

    def __init__(self, in_channels: int, base: int, n_stages: int, batch_norm: bool):
        super().__init__()
        if n_stages < 1:
            raise ValueError(f"n_stages must be >= 1, got {n_stages}")
        layers = _d_block(in_channels, base, 1, False)
        cin = base
        for i in range(n_stages):
            cout = base * 2 ** min(i, 3)
            layers += _d_block(cin, cout, 2, batch_norm)
            layers += _d_block(cout, cout, 1, batch_norm)
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(cin, cin), nn.LeakyReLU(0.2, inplace=True), nn.Linear(cin, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.classifier(f.mean(dim=(2, 3)))  # [N,1] logits


class ImageDiscriminator(_ConvDiscriminator):
    """SRGAN's image discriminator, compact: RGB [N,3,H,W] -> real/fake logit [N,1]."""

    def __init__(self, base: int = 32, n_stages: int = 4, batch_norm: bool = True):
        super().__init__(3, base, n_stages, batch_norm)


class FeatureDiscriminator(_ConvDiscriminator):
    """Judges feature maps [N,C,H,W] of a feature extractor (SRFeat's feature discriminator)."""

    def __init__(self, in_channels: int = 64, base: int = 32, n_stages: int = 3, batch_norm: bool = True):
        super().__init__(in_channels, base, n_stages, batch_norm)
