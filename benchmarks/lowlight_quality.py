"""Low-light models on camera-true night versions of held-out images and of a test chart: PSNR, SSIM,
PSNR at the reference's brightness (GT-mean), colour error (CIEDE2000) and blockiness, beside gamma
and gamma+CLAHE, in one run. Writes benchmarks/reports/lowlight_quality.md.

    python benchmarks/lowlight_quality.py [--model shipped=models --model v2=WORK] [--seeds 3] [--out PATH]

Each --model is LABEL=DIR, DIR a models folder whose manifest has a `lowlight` entry (models/, or the
work folder of `edge-export build`); default: the shipped model. Night frames:
export_tools.data.camera_night at its EVAL_SPEC (Brooks et al. unprocessing: exposure, shot + read
noise, an ISP with imperfect white balance and colour matrix, JPEG; IR mode off), seeded. The chart is
a smooth gradient with edges at random places (export_tools.export.metrics.blockiness scores a 4, 8
or 16 px grid in grey levels; under 0.5 shows none). The agent's own stage runs the model
(edge_agent.enhance.low_light.LowLightEnhancer, ratio auto, ONNX Runtime INT8 as the agent runs it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np
from machine import cpu_name  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.enhance.low_light import LowLightEnhancer  # noqa: E402
from edge_agent.inference.loader import load_model  # noqa: E402
from export_tools.data.camera_night import EVAL_SPEC as SPEC  # noqa: E402
from export_tools.data.camera_night import synth_camera_night  # noqa: E402
from export_tools.data.charts import gradient_chart  # noqa: E402
from export_tools.data.images import held_out_images  # noqa: E402
from export_tools.export.metrics import blockiness, clahe, gamma_to_mean, low_light_extras, psnr, ssim  # noqa: E402


def methods(enhancers: dict[str, LowLightEnhancer]):
    def model(enhancer):
        return lambda night_rgb, ref: enhancer.enhance(np.ascontiguousarray(night_rgb[:, :, ::-1]), "auto")[:, :, ::-1]

    def gamma(night_rgb, ref):
        return gamma_to_mean(night_rgb, 0.45)

    def gamma_clahe(night_rgb, ref):
        return clahe(gamma_to_mean(night_rgb, 0.45))

    return {**{label: model(e) for label, e in enhancers.items()}, "gamma": gamma, "gamma+CLAHE": gamma_clahe}


def load_enhancers(specs: list[str]) -> dict[str, LowLightEnhancer]:
    out = {}
    for spec in specs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise SystemExit(f"--model {spec!r}: expected LABEL=DIR")
        loaded = load_model(Path(folder), "lowlight", "onnxruntime", "int8", threads=2)
        info = loaded.info
        out[f"{label}: lowlight {info.version} ({info.backend} {info.precision})"] = LowLightEnhancer(loaded)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None, metavar="LABEL=DIR",
                    help="a low-light model to measure (repeatable); default shipped=models")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "lowlight_quality.md")
    args = ap.parse_args()
    enhancers = load_enhancers(args.model or [f"shipped={ROOT / 'models'}"])
    images = {**held_out_images(), "chart": gradient_chart()}
    rows: dict[str, dict[str, list[float]]] = {}
    blocks: dict[str, list[float]] = {}
    for name, ref in images.items():
        for s in range(args.seeds):
            night, _ = synth_camera_night(ref, SPEC, np.random.default_rng(20_000 + s))
            for label, fn in methods(enhancers).items():
                out = fn(night, ref)
                r = rows.setdefault(label, {"psnr": [], "ssim": [], "psnr_gt_mean": [], "ciede2000": []})
                if name == "chart":
                    blocks.setdefault(label, []).append(blockiness(out))
                    continue
                r["psnr"].append(psnr(out, ref))
                r["ssim"].append(ssim(out, ref))
                for key, value in low_light_extras(out, ref).items():
                    r[key].append(value)
    photos = [n for n in images if n != "chart"]
    lines = ["# Low light on camera-true night frames", "",
             f"Run {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {cpu_name()}, "
             f"{os.cpu_count()} cores. Models: {'; '.join(enhancers)}; ratio auto, the agent's own stage. "
             f"Command: `python benchmarks/lowlight_quality.py {' '.join(sys.argv[1:])}`.", "",
             f"Night frames: export_tools.data.camera_night, exposure {SPEC.exposure[0]:.0%}-{SPEC.exposure[1]:.0%}, "
             f"Brooks shot + read noise, imperfect white balance and colour matrix, JPEG {SPEC.jpeg_quality[0]}-"
             f"{SPEC.jpeg_quality[1]}; {args.seeds} seeds each of {', '.join(photos)} (held out of every "
             "training), and of a colour test chart for the blockiness (a 4/8/16 px grid, grey levels; "
             "under 0.5 shows none, pixelation scores 3-4).", "",
             "| method | PSNR dB | SSIM | PSNR at the reference's brightness (GT-mean) | CIEDE2000 | blockiness (chart) |",
             "|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {np.mean(r['psnr']):.2f} | {np.mean(r['ssim']):.3f} | "
                     f"{np.mean(r['psnr_gt_mean']):.2f} | {np.mean(r['ciede2000']):.1f} | "
                     f"{np.mean(blocks[label]):.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
