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


UPSAMPLERS = ("transpose", "bilinear")


def _up2(cin: int, cout: int, mode: str) -> nn.Module:
    """x2 upsampling of a U-Net decoder. "transpose": the paper's 2x2 stride-2 transposed conv (each
    output phase has its own kernel: the source of a 2**level px grid on smooth areas);
    "bilinear": a 1x1 conv at the low resolution, then bilinear x2 (no per-phase weights, no grid)."""
    if mode == "transpose":
        return nn.ConvTranspose2d(cin, cout, 2, stride=2)
    if mode == "bilinear":
        return nn.Sequential(nn.Conv2d(cin, cout, 1),
                             nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
    raise ValueError(f"upsample must be one of {UPSAMPLERS}, got {mode!r}")


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class _Act(nn.LeakyReLU):
    def __init__(self) -> None:
        super().__init__(0.2, inplace=True)


class DecomNet(nn.Module):
    """S [N,3,H,W] -> (R [N,3,H,W], I [N,1,H,W]), both in (0, 1). H, W multiples of pad_multiple."""

    def __init__(self, width: float = 1.0, scale: int = 1, upsample: str = "transpose") -> None:
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
        self.up8 = _up2(c3, c2, upsample)
        self.conv8 = nn.Sequential(_conv(2 * c2, c2), _Act())
        self.up9 = _up2(c2, c1, upsample)
        self.conv9 = nn.Sequential(_conv(2 * c1, c1), _Act())
        self.r_out = _conv(c1, 3 * s2, 1)
        # illumination branch: shallow features + reflectance-branch features
        self.l_conv2 = nn.Sequential(_conv(c1, c1), _Act())
        self.i_out = _conv(2 * c1, s2, 1)

    def folded(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, I) still folded at 1/scale resolution (3*s*s and s*s channels, pixel-shuffle order)."""
        x = self.unfold(image)
        f1 = self.conv1(x)
        f2 = self.conv2(f1)
        f3 = self.conv3(f2)
        f8 = self.conv8(torch.cat([self.up8(f3), f2], 1))
        f9 = self.conv9(torch.cat([self.up9(f8), f1], 1))
        r = torch.sigmoid(self.r_out(f9))
        i = torch.sigmoid(self.i_out(torch.cat([self.l_conv2(f1), f9], 1)))
        return r, i

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r, i = self.folded(image)
        return self.fold(r), self.fold(i)


class RestorationNet(nn.Module):
    """U-Net (R [N,3,H,W], I [N,1,H,W]) -> restored R [N,3,H,W] in (0, 1)."""

    def __init__(self, width: float = 1.0, levels: int = 4, scale: int = 1, upsample: str = "transpose") -> None:
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
            self.ups.append(_up2(chans[k + 1], chans[k], upsample))
            self.dec.append(nn.Sequential(_conv(2 * chans[k], chans[k]), _Act(), _conv(chans[k], chans[k]), _Act()))
        self.out = _conv(chans[0], 3 * s2)

    def forward(self, r: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        delta = self.fold(self.correction(self.unfold(torch.cat([r, i], 1))))
        # residual on the input reflectance: the net learns the correction (denoise, de-cast)
        return torch.clamp(delta + r, 0.0, 1.0)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        """U-Net on the unfolded (R, I): the folded correction added to R."""
        skips = []
        for k, block in enumerate(self.enc):
            if k > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for up, block in zip(self.ups, self.dec, strict=True):
            x = block(torch.cat([up(x), skips.pop()], 1))
        return self.out(x)


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

    def pooled(self, x: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """Adjustment logits at 1/scale resolution from the average-pooled illumination x."""
        ratio_map = torch.ones_like(x) * ratio.reshape(-1, 1, 1, 1)
        return self.body(torch.cat([x, ratio_map], 1))

    def forward(self, i: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(i, self.scale) if self.scale > 1 else i
        y = self.pooled(x, ratio)
        if self.scale > 1:
            y = F.interpolate(y, scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return torch.sigmoid(y)


class KinDEnhancer(nn.Module):
    """forward(image [N,3,H,W] RGB 0..1, ratio [N,1]) -> enhanced [N,3,H,W] RGB 0..1.

    H and W must be multiples of `pad_multiple` (pad with edge_agent.enhance.tensors.pad_to_multiple).
    """

    # ONNX node-name prefixes INT8 leaves in float (export_tools.export.pipeline): everything but the
    # decomposition convolutions and the inner restoration convolutions. The illumination of a night
    # frame is a few hundredths and shares tensors with the reflectance (0..1) and the ratio (1..20):
    # the concatenations, the sigmoids, the pooled illumination, the adjustment net, the restoration's
    # first and last convs and the final product lose it at 8 bits (ONNX Runtime INT8 of the kind_v2
    # candidate was 5 dB below FP32 with them quantized, 0.28 dB with them in float).
    keep_float = ("/unfold/", "/Concat", "/Sigmoid", "/Add", "/Clip", "/Shape", "/Gather", "/Unsqueeze",
                  "/Reshape", "/ReduceMean", "/ConstantOfShape", "/Mul", "/body/", "/Pad", "/Conv",
                  "/DepthToSpace", "/pool", "/enc.0/enc.0.0/", "/out/", "/i_out/",
                  # the decoders' upsampling (bilinear: 1x1 conv + Resize): ONNX Runtime INT8 of kind_v3
                  # lost 0.33 dB with it quantized, 0.11 dB in float
                  "/ups", "/up8/", "/up9/")
    # ONNX Runtime INT8 (static QDQ, per-tensor uint8 activations) also keeps the decomposition and the
    # restoration encoder in float: with them quantized kind_v4 lost 0.64 dB against FP32 in ORT (the
    # gate allows 0.3) while NNCF's OpenVINO INT8 of the same graph lost 0.10; in float, 0.002 dB
    keep_float_onnxruntime = ("/conv1/", "/conv2/", "/conv3/", "/conv8/", "/conv9/", "/r_out/", "/l_conv2/", "/enc.")
    # OpenVINO INT8 without NNCF's fast bias correction: with it, kind_v3 lost 0.51 dB against FP32,
    # without it 0.06 dB (the corrected biases follow the calibration frames' tiny illumination)
    int8_fast_bias_correction = False

    def __init__(self, width: float = 1.0, restore_levels: int = 4, decom_scale: int = 1,
                 restore_scale: int = 1, illum_scale: int = 1, restore_width: float | None = None,
                 upsample: str = "transpose") -> None:
        super().__init__()
        for name, s in (("decom_scale", decom_scale), ("restore_scale", restore_scale), ("illum_scale", illum_scale)):
            if s < 1 or (s & (s - 1)):
                raise ValueError(f"{name} must be a power of two >= 1, got {s}")
        self.decom = DecomNet(width, decom_scale, upsample)
        self.restore = RestorationNet(width if restore_width is None else restore_width, restore_levels,
                                      restore_scale, upsample)
        self.adjust = IllumAdjustNet(width, illum_scale)
        self.pad_multiple = math.lcm(self.decom.pad_multiple, self.restore.pad_multiple, self.adjust.pad_multiple)

        d, s = decom_scale, restore_scale
        self.fast = s > 1 and illum_scale == s and s % d == 0
        if self.fast:
            self.register_buffer("_bilinear", _bilinear_unfolded(s), persistent=False)

    def forward(self, image: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return self._forward_folded(image, ratio)
        return self.forward_reference(image, ratio)

    def forward_reference(self, image: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """The literal KinD composition (what the stages train)."""
        r, i = self.decom(image)
        r_restored = self.restore(r, i)
        i_adjusted = self.adjust(i, ratio)
        return torch.clamp(r_restored * i_adjusted, 0.0, 1.0)

    def _forward_folded(self, image: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """Same result as forward_reference, computed without full-resolution intermediates:
        the decomposition output is refolded straight to the restoration's 1/s grid, the residual,
        the bilinear upsampling of the illumination (a fixed 3x3 conv to s*s sub-pixels) and the
        product all happen there, and one pixel-shuffle at the end restores full resolution."""
        s, d = self.restore.scale, self.decom.scale
        r_d, i_d = self.decom.folded(image)
        r_s, i_s = _refold(r_d, d, s), _refold(i_d, d, s)
        r_restored = torch.clamp(self.restore.correction(torch.cat([r_s, i_s], 1)) + r_s, 0.0, 1.0)
        pooled = i_s.mean(1, keepdim=True)  # = avg_pool(I, s) at full resolution
        y = self.adjust.pooled(pooled, ratio)
        i_adj = torch.sigmoid(F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), self._bilinear))
        n, _, h, w = r_restored.shape
        out = r_restored.reshape(n, 3, s * s, h, w) * i_adj.reshape(n, 1, s * s, h, w)
        return F.pixel_shuffle(torch.clamp(out.reshape(n, 3 * s * s, h, w), 0.0, 1.0), s)


def _refold(y: torch.Tensor, d: int, s: int) -> torch.Tensor:
    """pixel_unshuffle(pixel_shuffle(y, d), s) without building the full-resolution tensor."""
    if d == s:
        return y
    k = s // d
    n, cdd, h, w = y.shape
    c = cdd // (d * d)
    y = y.reshape(n, c, d, d, h // k, k, w // k, k)  # (c, a, b, H, a', W, b'): row = (H*k + a')*d + a
    y = y.permute(0, 1, 5, 2, 7, 3, 4, 6)  # (c, a', a, b', b, H, W): p = a'*d + a, q = b'*d + b
    return y.reshape(n, c * s * s, h // k, w // k)


def _bilinear_unfolded(s: int) -> torch.Tensor:
    """3x3 conv weights [s*s,1,3,3]: bilinear x s upsampling (align_corners=False, edges clamped by
    replicate padding) written directly in pixel-unshuffle order."""
    taps = torch.zeros(s, 3, dtype=torch.float64)
    for p in range(s):
        t = (p + 0.5) / s - 0.5
        if t < 0:
            taps[p, 0], taps[p, 1] = -t, 1 + t
        else:
            taps[p, 1], taps[p, 2] = 1 - t, t
    w = taps[:, None, :, None] * taps[None, :, None, :]  # (p, q, di, dj)
    return w.reshape(s * s, 1, 3, 3).float()


# published KinD sizes and the compact variant the product ships (kwargs are JSON-able)
PUBLISHED_KWARGS: dict = {"width": 1.0, "restore_levels": 4}
COMPACT_KWARGS: dict = {"width": 0.5, "restore_levels": 2, "decom_scale": 2, "restore_scale": 4,
                        "illum_scale": 4, "restore_width": 0.75}
