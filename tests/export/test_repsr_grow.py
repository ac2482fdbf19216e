"""Growing a trained RepSR into a wider and deeper one: the same function at the start, every new
part trainable."""

from __future__ import annotations

import pytest
import torch
from test_repsr import _randomized, _unclamped

from export_tools.archs.repsr import RepSR
from export_tools.archs.repsr_grow import grow


@pytest.mark.parametrize("long_skip", [False, True])
@pytest.mark.parametrize("anchor", ["bicubic", "nearest"])
def test_grown_net_computes_what_the_small_one_computes(long_skip, anchor):
    small = _randomized(0, channels=8, blocks=2, long_skip=long_skip, anchor=anchor).double()
    with torch.no_grad():  # the bicubic anchor zeroes the tail at init: give it trained-like values
        for p in small.tail.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    torch.manual_seed(1)
    big = grow(small, RepSR(channels=12, blocks=4, long_skip=long_skip, anchor=anchor).double())
    x = torch.rand(2, 3, 11, 13, dtype=torch.float64)  # odd sizes: the borders count too
    expect = _unclamped(small, x)
    for branches in (True, False):  # through the branch sum and through the folded kernel
        got = _unclamped(big.use_branches(branches), x)
        torch.testing.assert_close(got, expect, atol=1e-10, rtol=0)
    # and so does its merged (exported) form
    torch.testing.assert_close(_unclamped(big.merged(), x), expect, atol=1e-10, rtol=0)


def test_every_new_part_gets_a_gradient_from_the_first_step():
    small = _randomized(0, channels=8, blocks=2, anchor="bicubic")
    with torch.no_grad():
        for p in small.tail.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    big = grow(small, RepSR(channels=12, blocks=4, anchor="bicubic")).use_branches(False)
    big.train()
    (big(torch.rand(2, 3, 10, 10)) - torch.rand(2, 3, 40, 40)).abs().mean().backward()
    tail_from_new = big.tail.conv3x3.weight.grad[:, 8:]
    assert tail_from_new.abs().sum() > 0  # the tail starts reading the new channels
    new_block = big.body[6]  # the 4th block, added as the identity
    assert new_block.conv3x3.weight.grad.abs().sum() > 0
    assert new_block.sobel_x.scale.grad.abs().sum() > 0


def test_grow_refuses_what_it_cannot_preserve():
    small = RepSR(channels=8, blocks=2)
    with pytest.raises(ValueError, match="at least as wide and deep"):
        grow(small, RepSR(channels=6, blocks=2))
    with pytest.raises(ValueError, match="long_skip"):
        grow(small, RepSR(channels=8, blocks=2, long_skip=True))
    with pytest.raises(ValueError, match="relu only"):
        grow(RepSR(channels=8, blocks=2, act="prelu"), RepSR(channels=8, blocks=2, act="prelu"))
    with pytest.raises(ValueError, match="unmerged"):
        grow(RepSR(channels=8, blocks=2).merged(), RepSR(channels=8, blocks=2))
