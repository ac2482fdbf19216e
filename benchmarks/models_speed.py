"""Shipped compact models vs the published-size networks, side by side in one run on this machine.

Published-size KinD (width 1.0) and the SRGAN-paper generator (16 residual blocks x 64 channels,
BatchNorm, PReLU, 9x9 head/tail, two x2 pixel-shuffle stages) run in PyTorch FP32 with random
weights (speed does not depend on the weights). The shipped models come from models/manifest.yaml
and run in ONNX Runtime and OpenVINO (FP32 and INT8). Every row is end to end, as the agent does it:
BGR uint8 frame -> NCHW float -> pad -> infer -> crop -> BGR uint8. Median of --repeats runs after
one warm-up, all on --threads CPU threads. Writes benchmarks/reports/models.md.

    python benchmarks/models_speed.py [--threads 2] [--repeats 5] [--models models] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.enhance.tensors import bgr_to_nchw, crop_to, nchw_to_bgr, pad_to_multiple  # noqa: E402
from edge_agent.inference.loader import ov_options  # noqa: E402
from edge_agent.inference.manifest import load_manifest  # noqa: E402
from export_tools.export.backends import ort_runner, ov_runner, runner_for  # noqa: E402
from export_tools.export.verify import end_to_end, latency_frame, median_ms  # noqa: E402

PAPER_SRGAN = {"scale": 4, "n_blocks": 16, "channels": 64, "batch_norm": True, "act": "prelu",
               "upsampler": "progressive", "head_kernel": 9, "global_skip": "none"}
TARGETS = {"lowlight": (60.0, 50.0), "face_sr": (5.0, 15.0)}  # (max ms at 2 threads, min speed-up)
MAX_FILE_MB = {"lowlight": 10.0, "face_sr": 2.0}  # each shipped model file (an IR counts with its .bin)
CASES = {"lowlight": ("low_light", "1280x720 low-light frame"), "face_sr": ("face_sr", "64x64 face, x4")}


def torch_end_to_end(model, frame, pad_multiple: int, scale: int, ratio: float | None):
    import torch

    def run():
        image, size = pad_to_multiple(bgr_to_nchw(frame), pad_multiple)
        args = [torch.from_numpy(image)]
        if ratio is not None:
            args.append(torch.full((1, 1), ratio))
        with torch.no_grad():
            out = model(*args).numpy()
        return nchw_to_bgr(crop_to(out, size, scale))

    return run


def published_model(name: str):
    import torch

    from export_tools.archs.registry import build

    torch.manual_seed(0)
    if name == "lowlight":
        from export_tools.archs.kind import PUBLISHED_KWARGS

        model, label = build("kind_enhancer", **PUBLISHED_KWARGS), f"KinD published size {PUBLISHED_KWARGS}"
    else:
        model, label = build("srgan_generator", **PAPER_SRGAN), "SRGAN-paper generator (16 x 64, BN, PReLU)"
    return model.eval(), label


def ov_label(task: str) -> str:
    opts = ov_options(task, "openvino_int8")
    shapes = f"static shapes (up to {opts['static_shapes']})" if opts["static_shapes"] else "dynamic shapes"
    return f"{opts['precision_hint'] or 'CPU default'} precision, {shapes}"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def bench_case(name: str, models_dir: Path, threads: int, repeats: int) -> tuple[list[str], dict]:
    import torch

    task, what = CASES[name]
    entry = load_manifest(models_dir).models.get(name)
    if entry is None:
        raise SystemExit(f"{models_dir}/manifest.yaml has no model {name!r}; ship it first (edge-export package)")
    frame = latency_frame(task, entry.scale)
    ratio = 5.0 if task == "low_light" else None
    torch.set_num_threads(threads)
    big, label = published_model(name)
    pad = int(getattr(big, "pad_multiple", 1))
    rows = [(f"PyTorch FP32, {label}, {n_params(big) / 1e6:.2f} M params",
             median_ms(torch_end_to_end(big, frame, pad, entry.scale, ratio), max(3, repeats // 2)))]
    del big
    runners = {
        "ONNX Runtime FP32": ("onnx_fp32", lambda p: ort_runner(p, threads)),
        "ONNX Runtime INT8": ("onnx_int8", lambda p: ort_runner(p, threads)),
        "OpenVINO INT8 (f32, dynamic shapes: the agent until 2026-12)": (
            "openvino_int8", lambda p: ov_runner(p, threads, "f32")),
        f"OpenVINO INT8 (as the agent runs it: {ov_label(task)})": (
            "openvino_int8", lambda p: runner_for(p, threads, task=task, kind="openvino_int8")),
    }
    for label_rt, (kind, make) in runners.items():
        art = entry.files.get(kind)
        if art is None:
            continue
        run = make(models_dir / art.path)
        ms = median_ms(lambda run=run: end_to_end(run, frame, entry.pad_multiple, entry.scale, ratio), repeats)
        rows.append((f"{label_rt}, shipped {name} {entry.version}", ms))
    base = rows[0][1]
    max_ms, min_ratio = TARGETS[name]
    best = min(ms for _, ms in rows[1:])
    lines = [f"### {what}", "", "| model / runtime | median ms | speed-up vs published PyTorch |", "|---|---|---|"]
    lines += [f"| {label} | {ms:.1f} | {base / ms:.1f}x |" for label, ms in rows]
    ms_ok, ratio_ok = best <= max_ms, base / best >= min_ratio
    verdict = {"best_ms": best, "speedup": base / best, "max_ms": max_ms, "min_speedup": min_ratio,
               "met": ms_ok and ratio_ok}
    sizes = {kind: file_mb(models_dir, art) for kind, art in entry.files.items()}
    size_ok = max(sizes.values()) <= MAX_FILE_MB[name]
    verdict["met"] = verdict["met"] and size_ok
    lines += ["", f"Best shipped: {best:.1f} ms (target <= {max_ms:.0f} ms: **{'met' if ms_ok else 'MISSED'}**), "
              f"{base / best:.1f}x faster than the published size (target >= {min_ratio:.0f}x: "
              f"**{'met' if ratio_ok else 'MISSED'}**). Files: "
              + ", ".join(f"{k} {mb:.2f} MB" for k, mb in sizes.items())
              + f" (each <= {MAX_FILE_MB[name]:.0f} MB: **{'met' if size_ok else 'MISSED'}**).", ""]
    return lines, verdict


def file_mb(models_dir: Path, art) -> float:
    """Size of one shipped model file in MB; an OpenVINO IR counts with its weights (.bin)."""
    total = (models_dir / art.path).stat().st_size
    if getattr(art, "bin", None):
        total += (models_dir / art.bin).stat().st_size
    return total / 1e6


AGENT_1080P = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from edge_agent.config.loader import parse_config
from edge_agent.app import Agent
from edge_agent.sim import camera
from edge_agent.sim.night_clip import fit_scene
import skimage.data
max_pixels = None if sys.argv[2] == "none" else int(sys.argv[2])
cfg = parse_config(json.dumps({"site": "b", "cameras": [{"name": "c", "source": {"file": "x.mp4"}}],
                               "models": {"dir": sys.argv[3]}, "inference": {"threads": int(sys.argv[4])},
                               "publish": {"sink": "local", "local": {"dir": "/tmp"}}, "api": {"enabled": False}}), "bench")
agent = Agent(cfg)  # every stage the agent loads, as it loads them; nothing started
rng = np.random.default_rng(0)
frame = np.ascontiguousarray(camera.render(fit_scene(skimage.data.rocket(), 1920, 1080),
                             camera.sample_params(rng, exposure=(0.05, 0.05), jpeg_quality=None), rng)[:, :, ::-1])
ll, hc = cfg.cameras[0].low_light, cfg.cameras[0].health
times = []
for _ in range(5):
    t = time.perf_counter()
    agent.stages.low_light.enhance(frame, ll.ratio, max_pixels=max_pixels, gray_saturation=hc.ir_gray_saturation)
    times.append((time.perf_counter() - t) * 1000)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps({"ms": sorted(times)[2], "peak_rss_mb": hwm, "backend": agent.stages.models["low_light"].backend}))
"""
RSS_TARGET_MB = 350.0


def agent_1080p(models_dir: Path, threads: int) -> list[str]:
    """The agent's low-light stage on 1080p frames, whole and in tiles, each in a fresh process with
    every model the agent loads: ms per frame and the process's peak RSS."""
    import subprocess

    from edge_agent.config.schema import LowLightConfig

    default = LowLightConfig().max_pixels
    lines = ["### 1920x1080 low-light frame through the agent's stage", "",
             "A fresh `python` per row builds the agent (every model it loads, nothing started) and enhances "
             "a simulated 1080p night frame 5 times; peak RSS = the process's VmHWM.", "",
             "| low_light.max_pixels | median ms | peak RSS MB |", "|---|---|---|"]
    verdict = None
    for mp in (None, default, default // 2):
        out = subprocess.run([sys.executable, "-c", AGENT_1080P, str(ROOT), "none" if mp is None else str(mp),
                              str(models_dir), str(threads)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        name = "whole frame" if mp is None else f"{mp:,} (tiles{', the default' if mp == default else ''})"
        lines.append(f"| {name} | {r['ms']:.0f} | {r['peak_rss_mb']:.0f} |")
        if mp == default:
            verdict = r["peak_rss_mb"] <= RSS_TARGET_MB
    lines += ["", f"Agent peak RSS with the default tiles (target <= {RSS_TARGET_MB:.0f} MB): "
              f"**{'met' if verdict else 'MISSED'}**.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "models.md")
    ap.add_argument("--only", choices=list(CASES), default=None)
    args = ap.parse_args(argv)
    import onnxruntime
    import openvino
    import torch

    out = [
        "# Shipped models vs published-size networks (speed)",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {cpu_name()}, "
        f"{os.cpu_count()} cores visible, {args.threads} threads; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, openvino {openvino.__version__}. End to end per input (pre + infer + post), "
        f"median of {args.repeats} runs after a warm-up (PyTorch rows: median of {max(3, args.repeats // 2)}). "
        "Published-size networks use random weights: speed only. The machine may be shared; rows of one "
        "case run back to back so they see the same load. Load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + ".",
        "",
    ]
    verdicts = {}
    for name in [args.only] if args.only else list(CASES):
        lines, verdicts[name] = bench_case(name, args.models, args.threads, args.repeats)
        out += lines
        print("\n".join(lines), flush=True)
    if args.only in (None, "lowlight"):
        lines = agent_1080p(args.models, args.threads)
        out += lines
        print("\n".join(lines), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.append(f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.")
    args.out.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(v["met"] for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
