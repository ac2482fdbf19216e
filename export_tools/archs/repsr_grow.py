"""Grow a trained RepSR into a wider and deeper one that computes exactly the same function.

Net2Net-style (Chen et al. 2016), for the training-time (unmerged) RepSR: a larger net trained from
the smaller one's weights starts where the smaller one ended instead of at bicubic, so a CPU budget
buys the extra capacity rather than re-learning what the small net knew.

- Wider (C -> C' channels): every parameter of an ECB keeps its trained values in its [:out, :in]
  corner; weights from the new input channels (and from the new channels of the 1x1 -> 3x3 branch's
  middle layer) into the old outputs are zero, so the old outputs are unchanged; the new output
  channels keep their random initialisation, scaled by `new_scale`, so they carry signal and their
  outgoing weights receive gradient from the first step.
- Deeper (B -> B' blocks): the new blocks go after the trained ones and start as the identity (every
  branch zero but the block's identity; ReLU of a ReLU output is itself); their branch weights
  receive gradient from the first step.
The tail reads only the old channels at first, so grow(small) == small on any input (tested to
1e-10 in float64). ReLU only (a PReLU's slope on the new channels would need its own rule).
"""

from __future__ import annotations

import torch
from torch import nn

from export_tools.archs.repsr import ECB, AnchorBicubic, RepSR


def _config(net: RepSR) -> dict:
    if net.is_merged:
        raise ValueError("grow needs the training-time (unmerged) RepSR, not a merged one")
    if not isinstance(net.head[1], nn.ReLU):
        raise ValueError("grow supports act relu only")
    head: ECB = net.head[0]
    return {"channels": head.cout, "blocks": len(net.body) // 2, "long_skip": net.skip_scale is not None,
            "expand": head.conv1x1_3x3.expand.out_channels // head.cout,
            "anchor": "bicubic" if isinstance(net.anchor, AnchorBicubic) else "nearest"}


@torch.no_grad()
def _copy_into(small: ECB, big: ECB, new_scale: float) -> None:
    """big's parameters <- small's in their [:out, :in] corner, zero from new inputs into old outputs,
    the new outputs' random values scaled by new_scale."""
    params = dict(big.named_parameters())
    for name, ps in small.named_parameters():
        pb = params[name]
        o = ps.shape[0]
        pb[o:].mul_(new_scale)
        if ps.ndim == 1:
            pb[:o].copy_(ps)
            continue
        i = ps.shape[1]
        pb[:o, :i].copy_(ps)
        pb[:o, i:].zero_()


@torch.no_grad()
def _identity(block: ECB) -> None:
    """The block computes x (its identity branch) and nothing else, yet every branch can learn."""
    for conv in (block.conv3x3, block.conv1x1_3x3.squeeze):
        conv.weight.zero_()
        conv.bias.zero_()
    for edge in (block.sobel_x, block.sobel_y, block.laplacian):
        edge.scale.zero_()
        edge.bias.zero_()


def grow(small: RepSR, big: RepSR, new_scale: float = 0.1) -> RepSR:
    """Load `small` into `big` (at least as wide and as deep, same anchor, long skip and expand), so
    that big computes what small computes; returns big."""
    s, b = _config(small), _config(big)
    for key in ("long_skip", "expand", "anchor"):
        if s[key] != b[key]:
            raise ValueError(f"cannot grow a RepSR with {key}={s[key]} into one with {key}={b[key]}")
    if b["channels"] < s["channels"] or b["blocks"] < s["blocks"]:
        raise ValueError(f"cannot grow {s['blocks']} blocks x {s['channels']} channels into "
                         f"{b['blocks']} x {b['channels']}: the target must be at least as wide and deep")
    _copy_into(small.head[0], big.head[0], new_scale)
    for k in range(b["blocks"]):
        if k < s["blocks"]:
            _copy_into(small.body[2 * k], big.body[2 * k], new_scale)
        else:
            _identity(big.body[2 * k])
    _copy_into(small.tail, big.tail, new_scale)
    if small.skip_scale is not None:
        with torch.no_grad():
            big.skip_scale.copy_(small.skip_scale)
    return big
