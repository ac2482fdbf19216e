"""Motion gate vs OpenCV MOG2 on 1920x1080 frames, side by side in one run.

A clip is generated in memory (a static textured night scene with sensor noise and a person-sized
box moving across it). Every frame goes through our MotionGate and through
cv2.createBackgroundSubtractorMOG2 at full resolution, interleaved, so both see the same load.
Also times the downscale alternatives the gate could use. Writes benchmarks/reports/motion_gate.md.

    python benchmarks/motion_gate.py [--frames 120] [--runs 3] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config.schema import MotionConfig  # noqa: E402
from edge_agent.motion.gate import MotionGate, downscale_gray  # noqa: E402

H, W = 1080, 1920


def make_clip(n_unique: int, seed: int = 0) -> list[np.ndarray]:
    """Static dark textured scene + noise; a 180x400 box walks left to right."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(10, 90, (H // 16, W // 16, 3), dtype=np.uint8)
    base = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    base = cv2.add(base, rng.integers(0, 25, (H, W, 3), dtype=np.uint8))  # fine texture
    frames = []
    for i in range(n_unique):
        img = cv2.add(base, rng.integers(0, 6, (H, W, 3), dtype=np.uint8))  # sensor noise
        x = 100 + int((W - 400) * i / max(1, n_unique - 1))
        cv2.rectangle(img, (x, 500), (x + 180, 900), (120, 130, 140), -1)
        frames.append(img)
    return frames


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def one_run(frames: list[np.ndarray], n: int, static: np.ndarray) -> dict:
    gate = MotionGate(MotionConfig())
    mog = cv2.createBackgroundSubtractorMOG2()
    for _ in range(5):  # warm both up on the static scene (allocations, first background)
        gate.update(static, 0.0)
        mog.apply(static)
    g_ms, m_ms, active = [], [], 0
    for i in range(n):
        img = frames[i % len(frames)]
        ts = 1.0 + i / 25.0
        t0 = time.perf_counter()
        r = gate.update(img, ts)
        t1 = time.perf_counter()
        mog.apply(img)
        t2 = time.perf_counter()
        g_ms.append((t1 - t0) * 1e3)
        m_ms.append((t2 - t1) * 1e3)
        active += r.active
    return {
        "gate_med": statistics.median(g_ms),
        "gate_p95": pct(g_ms, 95),
        "mog_med": statistics.median(m_ms),
        "mog_p95": pct(m_ms, 95),
        "active": active,
    }


def time_fn(fn, frames: list[np.ndarray], rounds: int = 8) -> float:
    """Median ms of fn over the cycled frames (frames come out of cache, as fresh decodes do)."""
    fn(frames[0])
    ts = []
    for _ in range(rounds):
        for img in frames:
            t0 = time.perf_counter()
            fn(img)
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def _area(a: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(a), (320, 180), interpolation=cv2.INTER_AREA)


DOWNSCALES = [
    ("cvtColor gray + resize INTER_AREA (full frame)", lambda f: _area(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))),
    (
        "resize BGR INTER_NEAREST, then gray",
        lambda f: cv2.cvtColor(
            cv2.resize(f, (320, 180), interpolation=cv2.INTER_NEAREST), cv2.COLOR_BGR2GRAY
        ),
    ),
    ("green plane, stride 2 + INTER_AREA", lambda f: _area(f[::2, ::2, 1])),
    ("green plane, stride 3 + INTER_AREA (2x2 averaging)", lambda f: _area(f[::3, ::3, 1])),
    ("**used**: downscale_gray = green plane, stride 6", lambda f: downscale_gray(f, 180)),
]



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120, help="timed frames per run")
    ap.add_argument("--unique", type=int, default=24, help="distinct generated frames (cycled)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (per-core cost by default)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "motion_gate.md")
    args = ap.parse_args(argv)

    cv2.setNumThreads(args.threads)
    load_before = os.getloadavg()
    frames = make_clip(args.unique)
    static = make_clip(1, seed=0)[0]
    runs = [one_run(frames, args.frames, static) for _ in range(args.runs)]
    alts = [(name, time_fn(fn, frames)) for name, fn in DOWNSCALES]
    load_after = os.getloadavg()

    med = {k: statistics.median(r[k] for r in runs) for k in ("gate_med", "gate_p95", "mog_med", "mog_p95")}
    ratio = med["mog_med"] / med["gate_med"]
    ok_abs, ok_ratio = med["gate_med"] <= 1.0, ratio >= 20.0
    lines = [
        "# Motion gate vs OpenCV MOG2, 1920x1080",
        "",
        f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}  ",
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}, NumPy {np.__version__}, "
        f"cv2 threads: {args.threads}  ",
        f"Load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        "(the machine is shared: numbers are noisy, medians over runs are reported)",
        "",
        f"Clip: generated in memory, {args.unique} distinct frames (static dark textured scene, sensor noise, "
        f"a 180x400 box walking across), cycled for {args.frames} timed frames per run, {args.runs} runs. "
        "Gate and MOG2 (default parameters, full resolution) run on each frame one after the other.",
        "",
        "| run | gate median ms | gate p95 ms | MOG2 median ms | MOG2 p95 ms | ratio (median) | gate active frames |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['gate_med']:.3f} | {r['gate_p95']:.3f} | {r['mog_med']:.2f} | {r['mog_p95']:.2f} | "
            f"{r['mog_med'] / r['gate_med']:.0f}x | {r['active']}/{args.frames} |"
        )
    lines += [
        f"| **median** | **{med['gate_med']:.3f}** | **{med['gate_p95']:.3f}** | **{med['mog_med']:.2f}** | "
        f"**{med['mog_p95']:.2f}** | **{ratio:.0f}x** | |",
        "",
        f"Targets: gate <= 1 ms per frame: **{'met' if ok_abs else 'NOT met'}**; "
        f">= 20x cheaper than MOG2: **{'met' if ok_ratio else 'NOT met'}**.",
        *(
            [
                "",
                f"Note: the load average exceeded the {os.cpu_count()} CPUs during the run, so the p95 columns "
                "mostly show the process being preempted (a sub-millisecond call that loses its time slice); "
                "the medians are the cost.",
            ]
            if max(load_before[0], load_after[0]) > (os.cpu_count() or 1)
            else []
        ),
        "",
        "## Downscale alternatives (1080p BGR -> 320x180 gray, median ms)",
        "",
        "| path | ms |",
        "|---|---|",
        *[f"| {name} | {ms:.3f} |" for name, ms in alts],
        "",
        "The gate reads the green plane (a stand-in for luma) through a strided view at the integer "
        "factor height // frame_height (INTER_AREA only for a remainder) and relies on its Gaussian blur "
        "for smoothing: numpy's strided copy costs about 1 ns per output pixel, so a 2x larger "
        "intermediate for anti-aliasing costs about 4x more. Timed over the cycled frames (not in cache).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"report written to {args.out}")
    return 0 if ok_abs and ok_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
