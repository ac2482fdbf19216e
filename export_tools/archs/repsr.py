"""RepSR: a re-parameterisable plain x4 face super-resolution network (pure nn.Module, no training).

Training time, every layer is an edge-oriented convolution block (ECB of ECBSR, Zhang et al. 2021;
the same idea as SESR's collapsible blocks and RepVGG): the sum of
  - a 3x3 conv,
  - a 1x1 expand conv (C_in -> expand*C_out) followed by a 3x3 squeeze conv,
  - three fixed edge filters, each a 1x1 conv followed by a depthwise Sobel-x / Sobel-y / Laplacian
    with a learned per-channel scale and bias,
  - the identity, when C_in == C_out,
followed by ReLU (or per-channel PReLU). Training runs each block as one 3x3 conv whose kernel is
folded from the branches' parameters at every step (`ECB.kernel`, differentiable): the same function
of the same parameters as the branch sum (`ECB.branches`), at the cost of a plain conv. All branches are linear, so `merge()` (alias
`reparameterize()`) folds each block into one 3x3 conv, exactly, borders included: the 1x1 convs of
the two-stage branches see a zero-padded input, so at the border their output is their bias, which
is what ECBSR gets by padding the intermediate map with the bias value, and what the merged conv
computes with plain zero padding.

Network: head ECB 3->C + act, `blocks` x (ECB C->C + act), optional SRFeat-style long skip
(body output + learned scalar * head features), tail ECB C->48 (no act), plus the image-space
anchor (each input channel repeated 16 times, i.e. nearest upsampling once shuffled, as in ABPN /
SESR), PixelShuffle(4), clamp(0, 1) in eval mode (as SRGANGenerator does, so training keeps the
gradient outside the range).
I/O: [N,3,h,w] RGB 0..1 -> [N,3,4h,4w] RGB 0..1, any h, w.

After `merge()` the module is Conv2d / ReLU (PReLU) / PixelShuffle plus the anchor Add and the
Clip (and a Mul + Add for the long skip): it exports to ONNX with dynamic H/W and quantises like a
plain conv net. The anchor is a fixed 0/1 1x1 conv 3->48 (a non-persistent buffer), so it exports as
one Conv instead of a Tile/Reshape chain; with 8-bit input its INT8 form is lossless.
`deploy=True` builds the merged structure directly, to load a state_dict saved after `merge()`.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Act = Literal["relu", "prelu"]

_EDGE_MASKS = {
    "sobel_x": ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0)),
    "sobel_y": ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0)),
    "laplacian": ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)),
}


def _act(kind: str, channels: int) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"unknown activation {kind!r}; use relu or prelu")


class EdgeBranch(nn.Module):
    """1x1 conv C_in->C_out, then a fixed depthwise 3x3 edge mask times a learned per-channel scale,
    plus a learned bias (ECBSR's conv1x1-sobelx / -sobely / -laplacian)."""

    def __init__(self, cin: int, cout: int, mask: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.scale = nn.Parameter(torch.randn(cout, 1, 1, 1) * 1e-3)
        self.bias = nn.Parameter(torch.randn(cout) * 1e-3)
        kernel = torch.tensor(_EDGE_MASKS[mask]).expand(cout, 1, 3, 3).contiguous()
        self.register_buffer("mask", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(x, (1, 1, 1, 1)))  # border = conv bias, as the merged 3x3 sees it
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=y.shape[1])

    def fused(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(kernel [o, i, 3, 3], bias [o]) of the branch as one 3x3 conv; differentiable."""
        w1 = self.conv.weight.to(dtype)[:, :, 0, 0]  # [o, i]
        dw = (self.scale * self.mask).to(dtype)[:, 0]  # [o, 3, 3]
        k = dw[:, None] * w1[:, :, None, None]  # [o, i, 3, 3]
        b = self.bias.to(dtype) + self.conv.bias.to(dtype) * dw.sum(dim=(1, 2))
        return k, b


class ExpandSqueeze(nn.Module):
    """1x1 conv C_in -> mid, then 3x3 conv mid -> C_out (ECBSR's conv1x1-3x3)."""

    def __init__(self, cin: int, cout: int, mid: int):
        super().__init__()
        self.expand = nn.Conv2d(cin, mid, 1)
        self.squeeze = nn.Conv2d(mid, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squeeze(self.expand(F.pad(x, (1, 1, 1, 1))))

    def fused(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(kernel [o, i, 3, 3], bias [o]) of the branch as one 3x3 conv; differentiable."""
        w1 = self.expand.weight.to(dtype)[:, :, 0, 0]  # [m, i]
        w3 = self.squeeze.weight.to(dtype)  # [o, m, 3, 3]
        k = torch.einsum("omyx,mi->oiyx", w3, w1)
        b = self.squeeze.bias.to(dtype) + torch.einsum("omyx,m->o", w3, self.expand.bias.to(dtype))
        return k, b


class ECB(nn.Module):
    """Edge-oriented convolution block: sum of linear branches, foldable into one 3x3 conv."""

    def __init__(self, cin: int, cout: int, expand: int = 2, identity: bool = True):
        super().__init__()
        self.cin, self.cout = cin, cout
        self.conv3x3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1x1_3x3 = ExpandSqueeze(cin, cout, max(1, int(expand * cout)))
        self.sobel_x = EdgeBranch(cin, cout, "sobel_x")
        self.sobel_y = EdgeBranch(cin, cout, "sobel_y")
        self.laplacian = EdgeBranch(cin, cout, "laplacian")
        self.identity = identity and cin == cout
        self.fused = True  # forward through kernel(); False: through the branches (tests compare)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self.branches(x)
        k, b = self.kernel()
        return F.conv2d(x, k, b, padding=1)

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The block as its sum of branches (the definition; `forward` computes the same through
        `kernel()`, and the merge is checked against this)."""
        y = self.conv3x3(x) + self.conv1x1_3x3(x) + self.sobel_x(x) + self.sobel_y(x) + self.laplacian(x)
        if self.identity:
            y = y + x
        return y

    def kernel(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's branches folded into one 3x3 kernel and bias, differentiably: training runs
        one conv per block with the same parameters, outputs and gradients as the branch sum
        (online re-parameterisation, as OREPA does), about 6x faster on a CPU than the branches."""
        k = self.conv3x3.weight.to(dtype)
        b = self.conv3x3.bias.to(dtype)
        for branch in (self.conv1x1_3x3, self.sobel_x, self.sobel_y, self.laplacian):
            bk, bb = branch.fused(dtype)
            k = k + bk
            b = b + bb
        if self.identity:
            eye = torch.zeros_like(k)
            eye[torch.arange(self.cout), torch.arange(self.cin), 1, 1] = 1.0
            k = k + eye
        return k, b

    @torch.no_grad()
    def merged_conv(self) -> nn.Conv2d:
        """One 3x3 conv (zero padding 1) computing exactly forward(), in the block's dtype/device."""
        k, b = self.kernel(torch.float64)
        ref = self.conv3x3.weight
        conv = nn.Conv2d(self.cin, self.cout, 3, padding=1).to(device=ref.device, dtype=ref.dtype)
        conv.weight.copy_(k)
        conv.bias.copy_(b)
        return conv


class AnchorRepeat(nn.Module):
    """x [N,C,h,w] -> [N,C*r,h,w], each channel repeated r times in a row (C0 x r, C1 x r, ...), so that
    PixelShuffle(sqrt(r)) of it is nearest upsampling. A fixed 0/1 1x1 conv: exports as one Conv."""

    def __init__(self, channels: int, repeats: int):
        super().__init__()
        kernel = torch.eye(channels).repeat_interleave(repeats, dim=0)[:, :, None, None]
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel)


def bicubic_phase_kernels(scale: int = 4, a: float = -0.75) -> torch.Tensor:
    """[scale*scale, 5, 5] weights: phase (py, px) of bicubic x`scale` upsampling (Keys' cubic with
    a = -0.75, pixel centres aligned, as OpenCV's INTER_CUBIC) over the 5x5 input neighbourhood."""
    def cubic(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a if x < 2 else 0.0

    taps = torch.zeros(scale, 5, dtype=torch.float64)
    for p in range(scale):
        d = (p + 0.5) / scale - 0.5  # source offset of output phase p from its input pixel
        for j, t in enumerate(range(-2, 3)):
            taps[p, j] = cubic(t - d)
        taps[p] /= taps[p].sum()
    return torch.einsum("yi,xj->yxij", taps, taps).reshape(scale * scale, 5, 5)


class AnchorBicubic(nn.Module):
    """x [N,C,h,w] -> [N,C*s*s,h,w] whose PixelShuffle(s) is bicubic upsampling (OpenCV's INTER_CUBIC
    away from the border; the outer two input pixels see zero padding, which the net learns to
    correct, as replicate padding would export as a chain of shape ops): a fixed 5x5 conv, so the
    net starts from bicubic and learns only what bicubic misses. Exports as one Conv."""

    def __init__(self, channels: int, scale: int):
        super().__init__()
        k = bicubic_phase_kernels(scale).float()
        s2 = scale * scale
        kernel = torch.zeros(channels * s2, channels, 5, 5)
        for c in range(channels):
            kernel[c * s2 : (c + 1) * s2, c] = k
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, padding=2)


class RepSR(nn.Module):
    """Re-parameterisable plain x4 SR net (ECB blocks + image anchor + PixelShuffle).

    channels: feature width C. blocks: body blocks (between head and tail). long_skip: SRFeat-style
    weighted long skip (body output + learned scalar * head features, before the tail).
    act: relu or prelu (per channel). expand: width multiplier of the 1x1->3x3 branch (ECBSR uses 2).
    deploy: build the merged plain structure (to load a state_dict saved after merge()).
    anchor: the image-space residual: nearest (input repeated, ABPN / SESR) or bicubic (a fixed 5x5
    conv equal to OpenCV's bicubic inside the image, with the tail zero-initialised so training
    starts at bicubic).
    """

    scale = 4
    keep_float: tuple[str, ...] = ("/anchor/",)  # the fixed bicubic kernel stays float in INT8

    def __init__(self, channels: int = 32, blocks: int = 8, long_skip: bool = False, act: Act = "relu",
                 expand: int = 2, deploy: bool = False, anchor: Literal["nearest", "bicubic"] = "nearest"):
        super().__init__()
        if blocks < 1 or channels < 4:
            raise ValueError(f"need blocks >= 1 and channels >= 4, got {blocks}, {channels}")
        if expand < 1:
            raise ValueError(f"expand must be >= 1, got {expand}")
        _act(act, 1)  # validate early
        s2 = self.scale * self.scale

        def block(cin: int, cout: int) -> nn.Module:
            return nn.Conv2d(cin, cout, 3, padding=1) if deploy else ECB(cin, cout, expand)

        self.head = nn.Sequential(block(3, channels), _act(act, channels))
        body: list[nn.Module] = []
        for _ in range(blocks):
            body += [block(channels, channels), _act(act, channels)]
        self.body = nn.Sequential(*body)
        self.skip_scale = nn.Parameter(torch.ones(1)) if long_skip else None
        self.tail = block(channels, 3 * s2)
        if anchor == "nearest":
            self.anchor: nn.Module = AnchorRepeat(3, s2)
        elif anchor == "bicubic":
            self.anchor = AnchorBicubic(3, self.scale)
            if not deploy:  # start exactly at bicubic: the tail's learned branches begin at zero
                with torch.no_grad():
                    for conv in (self.tail.conv3x3, self.tail.conv1x1_3x3.squeeze):
                        conv.weight.zero_()
                        conv.bias.zero_()
        else:
            raise ValueError(f"unknown anchor {anchor!r}; use nearest or bicubic")
        self.shuffle = nn.PixelShuffle(self.scale)

    @property
    def is_merged(self) -> bool:
        return not any(isinstance(m, ECB) for m in self.modules())

    @torch.no_grad()
    def merge(self) -> RepSR:
        """Fold every ECB into one 3x3 conv, in place (state_dict keys then match deploy=True)."""
        for seq in (self.head, self.body):
            for i, m in enumerate(seq):
                if isinstance(m, ECB):
                    seq[i] = m.merged_conv()
        if isinstance(self.tail, ECB):
            self.tail = self.tail.merged_conv()
        return self

    reparameterize = merge

    def use_branches(self, on: bool = True) -> RepSR:
        """Compute every ECB as its sum of branches (on) or through its folded kernel (off, the
        default: same outputs and gradients, faster)."""
        for m in self.modules():
            if isinstance(m, ECB):
                m.fused = not on
        return self

    def merged(self) -> RepSR:
        """A merged deep copy; this module is left as it is (e.g. to export while training goes on)."""
        return copy.deepcopy(self).merge()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        feat = self.body(head)
        if self.skip_scale is not None:
            feat = feat + self.skip_scale * head
        out = self.shuffle(self.tail(feat) + self.anchor(x))
        if not self.training:
            out = out.clamp(0.0, 1.0)
        return out
