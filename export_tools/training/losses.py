"""Image losses shared by the trainers (torch only): SSIM, total variation, gradients, smoothness."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _gauss_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :])[None, None]
    return w.expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, Gaussian window) of NCHW tensors in [0, data_range]."""
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    c = x.shape[1]
    w = _gauss_window(window, sigma, c, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x = F.conv2d(x, w, groups=c)
    mu_y = F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - ssim(x, y)


def gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along W and H (shapes shrink by one)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    gx, gy = gradients(x)
    return gx.abs().mean() + gy.abs().mean()


def gradient_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between the image gradients of x and y (keeps edges where the target has them)."""
    gx1, gy1 = gradients(x)
    gx2, gy2 = gradients(y)
    return (gx1 - gx2).abs().mean() + (gy1 - gy2).abs().mean()


def gray(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def structure_aware_smoothness(illum: torch.Tensor, image: torch.Tensor, c: float = 10.0) -> torch.Tensor:
    """|grad I| weighted by exp(-c |grad gray(S)|): I smooth except where the image has edges."""
    ix, iy = gradients(illum)
    sx, sy = gradients(gray(image))
    return (ix.abs() * torch.exp(-c * sx.abs())).mean() + (iy.abs() * torch.exp(-c * sy.abs())).mean()


def mutual_smoothness(i_low: torch.Tensor, i_high: torch.Tensor, c: float = 10.0) -> torch.Tensor:
    """KinD's mutual consistency: M * exp(-c M) with M = |grad I_low| + |grad I_high|."""
    lx, ly = gradients(i_low)
    hx, hy = gradients(i_high)
    mx = lx.abs() + hx.abs()
    my = ly.abs() + hy.abs()
    return (mx * torch.exp(-c * mx)).mean() + (my * torch.exp(-c * my)).mean()
