"""The shared training loop: budget in iterations and time, schedule, logs, checkpoints, resume, stop."""

from __future__ import annotations

import math

import pytest
import torch

from export_tools.training import loop
from export_tools.training.loop import LoopConfig, Progress


class Clock:
    """time.monotonic for the loop: each step costs `step_s` seconds."""

    def __init__(self, step_s: float):
        self.t, self.step_s = 1000.0, step_s

    def __call__(self) -> float:
        return self.t


def _runner(clock: Clock | None = None, losses=None):
    calls: list[int] = []

    def step(it: int) -> dict:
        calls.append(it)
        if clock is not None:
            clock.t += clock.step_s
        return {"l1": torch.tensor(losses(it) if losses else 1.0 + it)}

    return step, calls


def test_runs_to_max_iters_logs_means_and_checkpoints(monkeypatch):
    step, calls = _runner()
    saves, lines = [], []
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    seen = []

    def schedule(f: float) -> float:
        seen.append(f)
        return loop.cosine(f, 1e-2, 1e-4)

    cfg = LoopConfig(desc="t", max_iters=6, budget_s=3600, log_every=2, checkpoint_every=4)
    state = loop.run(cfg, step, state=Progress(), save=lambda s: saves.append(s.it), log=lines.append,
                     schedule=schedule, optimizers=[opt])
    assert state.it == 6 and calls == [0, 1, 2, 3, 4, 5]
    assert saves == [4, 6]  # every 4 iterations, and at the end
    assert len(lines) == 3 and "iter 2" in lines[0] and "l1 1.5000" in lines[0]  # mean of 1 and 2
    assert seen[0] == 0.0 and seen == sorted(seen) and seen[-1] == pytest.approx(5 / 6)
    assert opt.param_groups[0]["lr"] == pytest.approx(loop.cosine(5 / 6, 1e-2, 1e-4))
    assert not loop.stopped_early(cfg, state)


def test_time_budget_ends_the_run_and_counts_across_resumes(monkeypatch):
    clock = Clock(step_s=10.0)
    monkeypatch.setattr(loop.time, "monotonic", clock)
    step, calls = _runner(clock)
    cfg = LoopConfig(desc="t", max_iters=1000, budget_s=45.0, log_every=100, checkpoint_every_s=20.0)
    saves = []
    first = loop.run(cfg, step, state=Progress(), save=lambda s: saves.append((s.it, s.elapsed)), log=print)
    assert first.it == 5 and first.elapsed == pytest.approx(50.0)  # 4 steps leave 40 s < 45 s: one more
    assert [s for s, _ in saves] == [2, 4, 5]  # every 20 s, and at the end
    # a resumed run with the same budget has nothing left; a longer budget continues from there
    again = loop.run(cfg, step, state=Progress(first.it, first.elapsed), save=lambda s: None, log=print)
    assert again.it == 5
    longer = LoopConfig(desc="t", max_iters=1000, budget_s=75.0, log_every=100)
    more = loop.run(longer, step, state=Progress(first.it, first.elapsed), save=lambda s: None, log=print)
    assert more.it == 8 and calls[-3:] == [5, 6, 7]


def test_stop_at_leaves_a_resumable_state():
    step, calls = _runner()
    saves = []
    cfg = LoopConfig(desc="t", max_iters=10, budget_s=3600, stop_at=3)
    state = loop.run(cfg, step, state=Progress(), save=lambda s: saves.append(s.it), log=print)
    assert state.it == 3 and saves == [3] and loop.stopped_early(cfg, state)
    rest = loop.run(LoopConfig(desc="t", max_iters=10, budget_s=3600), step, state=state,
                    save=lambda s: None, log=print)
    assert rest.it == 10 and calls == list(range(10))


def test_a_loss_that_is_not_finite_stops_before_it_is_saved():
    step, _ = _runner(losses=lambda it: math.nan if it == 2 else 1.0)
    saves = []
    cfg = LoopConfig(desc="t", max_iters=10, budget_s=3600, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="l1 became nan at iteration 2"):
        loop.run(cfg, step, state=Progress(), save=lambda s: saves.append(s.it), log=print)
    assert saves == [1, 2]  # the state after iteration 2's bad loss is never written


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        LoopConfig(desc="t", max_iters=10, budget_s=0)
    with pytest.raises(ValueError):
        LoopConfig(desc="t", max_iters=10, budget_s=10, log_every=0)
    assert loop.cosine(0.0, 1.0, 0.1) == 1.0 and loop.cosine(1.0, 1.0, 0.1) == pytest.approx(0.1)
    assert loop.cosine(7.0, 1.0, 0.1) == pytest.approx(0.1)
