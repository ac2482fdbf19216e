"""Health monitor cost per 1920x1080 frame, next to the motion gate it rides on.

Every frame goes through MotionGate.update (which makes the small gray frame) and the
HealthMonitor (before_gate + observe on that small frame), timed separately, with the image checks
at the default rate (every 1 s) and on every frame. Target: at the default rate the monitor adds
<= 0.5 ms per 1080p frame on one core. Prints a short table (median of the runs).

    python benchmarks/health_monitor.py [--frames 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config.schema import HealthConfig, MotionConfig  # noqa: E402
from edge_agent.health.monitor import HealthMonitor  # noqa: E402
from edge_agent.motion.gate import MotionGate  # noqa: E402

H, W = 1080, 1920
TARGET_MS = 0.5


def clip(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    coarse = rng.integers(10, 120, (H // 16, W // 16, 3), dtype=np.uint8)
    base = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(8):
        f = cv2.add(base, rng.integers(0, 12, (H, W, 3), dtype=np.uint8))
        x = 100 + i * 200
        cv2.rectangle(f, (x, 400), (x + 180, 800), (90, 90, 120), -1)
        frames.append(f)
    return [frames[i % len(frames)] for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    frames = clip(args.frames)
    rows = []
    for interval in (1.0, 0.0):
        rows.append((interval, *bench(frames, args.runs, interval)))
    print(
        f"| scene_check_interval_s | motion gate ms | health monitor ms | (1080p, 10 fps, median of {args.runs}) |"
    )
    print("|---|---|---|---|")
    for interval, gm, mm in rows:
        print(f"| {interval} | {gm:.3f} | {mm:.3f} | |")
    mm = rows[0][2]
    print(
        f"target at the default interval: monitor <= {TARGET_MS} ms: {'met' if mm <= TARGET_MS else 'NOT met'}"
    )
    return 0


def bench(frames: list[np.ndarray], runs: int, interval: float) -> tuple[float, float]:
    gate_ms, mon_ms = [], []
    for _ in range(runs):
        gate = MotionGate(MotionConfig())
        mon = HealthMonitor("bench", HealthConfig(learn_s=0.5, scene_check_interval_s=interval))
        g = m = 0.0
        for i, f in enumerate(frames):
            ts = i / 10.0
            t0 = time.perf_counter()
            mon.before_gate(f, ts)
            t1 = time.perf_counter()
            gate.update(f, ts)
            t2 = time.perf_counter()
            mon.observe(f, gate.small, ts)
            t3 = time.perf_counter()
            g += t2 - t1
            m += (t1 - t0) + (t3 - t2)
        gate_ms.append(g * 1000 / len(frames))
        mon_ms.append(m * 1000 / len(frames))
    return statistics.median(gate_ms), statistics.median(mon_ms)


if __name__ == "__main__":
    raise SystemExit(main())
