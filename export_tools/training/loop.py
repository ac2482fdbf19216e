"""The one training loop every trainer runs (srgan.py, kind.py): iteration and time budget, learning
rate schedule, progress bar, running-loss log lines, periodic checkpoints and resume, a stop after a
given iteration (tests, interrupted runs). What one iteration does belongs to the trainer: it passes a
`step(it)` that samples a batch, runs one optimisation step and returns its losses, the way BasicSR's
models own `optimize_parameters` while the runner owns the rest.

A run ends at `max_iters` or when `budget_s` of training time is spent, whichever comes first; the
time counts across resumes (`Progress.elapsed` is checkpointed), so a recipe's budget is the total
over all sessions. The schedule sees the fraction done of whichever runs out first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from tqdm import tqdm

StepFn = Callable[[int], Mapping[str, "torch.Tensor | float"]]


@dataclass
class Progress:
    """Where a run stands: iterations done and training seconds spent (both checkpointed)."""

    it: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class LoopConfig:
    desc: str
    max_iters: int
    budget_s: float
    log_every: int = 100
    checkpoint_every_s: float | None = None  # checkpoint after this much time ...
    checkpoint_every: int | None = None  # ... and/or every this many iterations
    stop_at: int | None = None  # stop after this iteration (a checkpoint is written, no final)
    bar_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_iters < 0 or self.budget_s <= 0 or self.log_every < 1:
            raise ValueError(f"need max_iters >= 0, budget_s > 0, log_every >= 1; got {self}")


def cosine(progress: float, high: float, low: float) -> float:
    """Cosine decay from `high` (progress 0) to `low` (progress >= 1)."""
    p = min(max(progress, 0.0), 1.0)
    return low + 0.5 * (high - low) * (1.0 + math.cos(math.pi * p))


def fraction_done(cfg: LoopConfig, state: Progress) -> float:
    return max(state.it / max(cfg.max_iters, 1), state.elapsed / cfg.budget_s)


def run(cfg: LoopConfig, step: StepFn, *, state: Progress, save: Callable[[Progress], None],
        log: Callable[[str], None], schedule: Callable[[float], float] | None = None,
        optimizers: Iterable[torch.optim.Optimizer] = ()) -> Progress:
    """Run `step` until the iterations or the budget are spent (or `cfg.stop_at`), then checkpoint.

    schedule(fraction_done) -> the learning rate set on every param group of `optimizers` before each
    step. save(state) writes the trainer's checkpoint (with whatever else it needs to resume).
    A loss that is not finite stops the run with FloatingPointError, before the bad step is saved.
    """
    optimizers = list(optimizers)
    start = time.monotonic() - state.elapsed
    last_save = time.monotonic()
    running: dict[str, float] = {}
    lr = float("nan")
    bar = tqdm(total=cfg.max_iters, initial=state.it, desc=cfg.desc, mininterval=cfg.bar_interval_s,
               dynamic_ncols=True)
    try:
        while state.it < cfg.max_iters and state.elapsed < cfg.budget_s:
            if cfg.stop_at is not None and state.it >= cfg.stop_at:
                break
            if schedule is not None:
                lr = schedule(fraction_done(cfg, state))
                for opt in optimizers:
                    for group in opt.param_groups:
                        group["lr"] = lr
            losses = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                      for k, v in step(state.it).items()}
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"{cfg.desc}: loss {', '.join(bad)} became "
                                         f"{losses[bad[0]]} at iteration {state.it}")
            state.it += 1
            state.elapsed = time.monotonic() - start
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + v
            bar.update(1)
            if state.it % cfg.log_every == 0:
                stats = " ".join(f"{k} {v / cfg.log_every:.4f}" for k, v in running.items())
                log(f"{cfg.desc} iter {state.it} lr {lr:.2e} {stats} ({state.elapsed / 60:.1f} min)")
                bar.set_postfix_str(stats, refresh=False)
                running = {}
            due_time = cfg.checkpoint_every_s is not None and time.monotonic() - last_save >= cfg.checkpoint_every_s
            due_iter = cfg.checkpoint_every is not None and state.it % cfg.checkpoint_every == 0
            if due_time or due_iter:
                save(state)
                last_save = time.monotonic()
    finally:
        bar.close()
    save(state)
    return state


def stopped_early(cfg: LoopConfig, state: Progress) -> bool:
    """True when the run stopped at cfg.stop_at with iterations and budget left (resume to finish)."""
    return (cfg.stop_at is not None and state.it >= cfg.stop_at and state.it < cfg.max_iters
            and state.elapsed < cfg.budget_s)
