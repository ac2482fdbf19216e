"""KinD low-light enhancer (Zhang et al. 2019, "Kindling the Darkness"), pure nn.Module.

Three sub-networks, as in the paper:
  DecomNet        image S -> reflectance R (3 ch) and illumination I (1 ch), S ~= R * I
  RestorationNet  U-Net (R, I) -> restored R (denoised, colour-corrected reflectance)
  IllumAdjustNet  (I, ratio) -> adjusted I (brightened by the user's ratio)
and KinDEnhancer chains them: enhanced = clamp(R_restored * I_adjusted, 0, 1).

width=1.0 with every scale 1 and restore_levels=4 is the published size (decomposition
32-64-128, restoration U-Net 32-64-128-256-512, adjustment 3x32). The compact variant keeps the
structure but lets each branch work at reduced resolution inside the graph: the input is folded
with pixel-unshuffle (space-to-depth, no information lost) and the output unfolded with
pixel-shuffle, so the output stays full resolution; the illumination branch (smooth by
construction) runs on an average-pooled map and is upsampled bilinearly.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _ch(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class _Act(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2, inplace=True)


class DecomNet(nn.Module):
    """S [N,3,H,W] -> (R [N,3,H,W], I [N,1,H,W]), both in (0, 1). H, W multiples of pad_multiple."""

    def __init__(self, width: float = 1.0, scale: int = 1) -> None:
        super().__init__()
        c1, c2, c3 = _ch(32, width), _ch(64, width), _ch(128, width)
        self.scale = scale
        s2 = scale * scale
        self.pad_multiple = 4 * scale
        self.unfold = nn.PixelUnshuffle(scale) if scale > 1 else nn.Identity()
        self.fold = nn.PixelShuffle(scale) if scale > 1 else nn.Identity()
        self.conv1 = nn.Sequential(_conv(3 * s2, c1), _Act())
        self.conv2 = nn.Sequential(nn.MaxPool2d(2), _conv(c1, c2), _Act())
        self.conv3 = nn.Sequential(nn.MaxPool2d(2), _conv(c2, c3), _Act())
        self.up8 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.conv8 = nn.Sequential(_conv(2 * c2, c2), _Act())
        self.up9 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.conv9 = nn.Sequential(_conv(2 * c1, c1), _Act())
        self.r_out = _conv(c1, 3 * s2, 1)
        # illumination branch: shallow features + reflectance-branch features
        self.l_conv2 = nn.Sequential(_conv(c1, c1), _Act())
        self.i_out = _conv(2 * c1, s2, 1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.unfold(image)
        f1 = self.conv1(x)
        f2 = self.conv2(f1)
        f3 = self.conv3(f2)
        f8 = self.conv8(torch.cat([self.up8(f3), f2], 1))
        f9 = self.conv9(torch.cat([self.up9(f8), f1], 1))
        r = torch.sigmoid(self.fold(self.r_out(f9)))
        l2 = self.l_conv2(f1)
        i = torch.sigmoid(self.fold(self.i_out(torch.cat([l2, f9], 1))))
        return r, i


class RestorationNet(nn.Module):
    """U-Net (R [N,3,H,W], I [N,1,H,W]) -> restored R [N,3,H,W] in (0, 1)."""

    def __init__(self, width: float = 1.0, levels: int = 4, scale: int = 1) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError("restore_levels must be >= 1")
        self.scale = scale
        s2 = scale * scale
        self.pad_multiple = scale * 2**levels
        self.unfold = nn.PixelUnshuffle(scale) if scale > 1 else nn.Identity()
        self.fold = nn.PixelShuffle(scale) if scale > 1 else nn.Identity()
        chans = [_ch(32 * 2**k, width) for k in range(levels + 1)]
        self.enc = nn.ModuleList()
        cin = 4 * s2
        for k, c in enumerate(chans):
            self.enc.append(nn.Sequential(_conv(cin, c), _Act(), _conv(c, c), _Act()))
            cin = c
            del k
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for k in range(levels - 1, -1, -1):
            self.ups.append(nn.ConvTranspose2d(chans[k + 1], chans[k], 2, stride=2))
            self.dec.append(nn.Sequential(_conv(2 * chans[k], chans[k]), _Act(), _conv(chans[k], chans[k]), _Act()))
        self.out = _conv(chans[0], 3 * s2)

    def forward(self, r: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        x = self.unfold(torch.cat([r, i], 1))
        skips = []
        for k, block in enumerate(self.enc):
            if k > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for up, block in zip(self.ups, self.dec, strict=True):
            x = block(torch.cat([up(x), skips.pop()], 1))
        # residual on the input reflectance: the net learns the correction (denoise, de-cast)
        return torch.clamp(self.fold(self.out(x)) + r, 0.0, 1.0)


class IllumAdjustNet(nn.Module):
    """(I [N,1,H,W], ratio [N,1]) -> adjusted I [N,1,H,W] in (0, 1)."""

    def __init__(self, width: float = 1.0, scale: int = 1) -> None:
        super().__init__()
        c = _ch(32, width)
        self.scale = scale
        self.pad_multiple = scale
        self.body = nn.Sequential(
            _conv(2, c), _Act(), _conv(c, c), _Act(), _conv(c, c), _Act(), _conv(c, 1),
        )

    def forward(self, i: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(i, self.scale) if self.scale > 1 else i
        ratio_map = torch.ones_like(x) * ratio.reshape(-1, 1, 1, 1)
        y = self.body(torch.cat([x, ratio_map], 1))
        if self.scale > 1:
            y = F.interpolate(y, scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return torch.sigmoid(y)


class KinDEnhancer(nn.Module):
    """forward(image [N,3,H,W] RGB 0..1, ratio [N,1]) -> enhanced [N,3,H,W] RGB 0..1.

    H and W must be multiples of `pad_multiple` (pad with edge_agent.enhance.tensors.pad_to_multiple).
    """

    def __init__(self, width: float = 1.0, restore_levels: int = 4, decom_scale: int = 1,
                 restore_scale: int = 1, illum_scale: int = 1, restore_width: float | None = None) -> None:
        super().__init__()
        for name, s in (("decom_scale", decom_scale), ("restore_scale", restore_scale), ("illum_scale", illum_scale)):
            if s < 1 or (s & (s - 1)):
                raise ValueError(f"{name} must be a power of two >= 1, got {s}")
        self.decom = DecomNet(width, decom_scale)
        self.restore = RestorationNet(width if restore_width is None else restore_width, restore_levels, restore_scale)
        self.adjust = IllumAdjustNet(width, illum_scale)
        self.pad_multiple = math.lcm(self.decom.pad_multiple, self.restore.pad_multiple, self.adjust.pad_multiple)

    def forward(self, image: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        r, i = self.decom(image)
        r_restored = self.restore(r, i)
        i_adjusted = self.adjust(i, ratio)
        return torch.clamp(r_restored * i_adjusted, 0.0, 1.0)


# published KinD sizes and the compact variant the product ships (kwargs are JSON-able)
PUBLISHED_KWARGS: dict = {"width": 1.0, "restore_levels": 4}
COMPACT_KWARGS: dict = {"width": 0.5, "restore_levels": 2, "decom_scale": 2, "restore_scale": 4,
                        "illum_scale": 4, "restore_width": 0.75}
