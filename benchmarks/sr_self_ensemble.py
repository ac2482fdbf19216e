"""Face SR with and without the x8 self-ensemble, side by side in one run: is its gain worth its cost?

The self-ensemble (EDSR, Lim et al. 2017) runs the model on the 8 flips / transposes of the input,
undoes each on the output and averages. It adds nothing to the model and costs 8 passes per face.
This scores both on the verify validation set (held-out photos + dev faces, clean bicubic x4 and
CCTV-degraded) and times both on a 64x64 face, with the INT8 file the box would run.

    python benchmarks/sr_self_ensemble.py WORK_OR_VERSION_DIR [--file openvino_int8.xml] [--threads 2]

Writes benchmarks/reports/sr_self_ensemble.md.
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

from edge_agent.enhance.tensors import crop_to  # noqa: E402
from export_tools.export.backends import runner_for  # noqa: E402
from export_tools.export.metrics import y_psnr  # noqa: E402
from export_tools.export.samples import make_feeds, sr_validation  # noqa: E402
from export_tools.export.verify import latency_frame, median_ms  # noqa: E402

SCALE = 4


def _forward(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 dihedral transforms of an NCHW array (k & 4: transpose, k & 2: flip H, k & 1: flip W)."""
    if k & 4:
        x = x.transpose(0, 1, 3, 2)
    if k & 2:
        x = x[:, :, ::-1]
    if k & 1:
        x = x[:, :, :, ::-1]
    return np.ascontiguousarray(x)


def _inverse(y: np.ndarray, k: int) -> np.ndarray:
    if k & 1:
        y = y[:, :, :, ::-1]
    if k & 2:
        y = y[:, :, ::-1]
    if k & 4:
        y = y.transpose(0, 1, 3, 2)
    return y


def ensemble(run, image: np.ndarray) -> np.ndarray:
    return np.mean([_inverse(run({"image": _forward(image, k)}), k) for k in range(8)], axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a build work folder or models/face_sr/<version>")
    ap.add_argument("--file", default="openvino_int8.xml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "sr_self_ensemble.md")
    args = ap.parse_args()
    run = runner_for(args.folder / args.file, threads=args.threads)
    rows: dict[str, dict[str, list[float]]] = {}
    for s in sr_validation(SCALE):
        cond = s.condition or "clean"
        r = rows.setdefault(f"{cond} {s.group}", {"bicubic": [], "single": [], "x8": []})
        for label, out in (("single", run(s.feeds)), ("x8", ensemble(run, s.feeds["image"]))):
            rgb = np.round(np.clip(crop_to(out, s.size, SCALE)[0].transpose(1, 2, 0), 0, 1) * 255) / 255
            r[label].append(y_psnr(rgb, s.reference, SCALE))
        r["bicubic"].append(y_psnr(s.baselines["bicubic"], s.reference, SCALE))
    face = latency_frame("face_sr", SCALE)
    feeds, _ = make_feeds(np.ascontiguousarray(face[:, :, ::-1]), 1, None)
    ms_single = median_ms(lambda: run(feeds), 15)
    ms_x8 = median_ms(lambda: ensemble(run, feeds["image"]), 7)
    lines = ["# Face SR: x8 self-ensemble against a single pass", "",
             f"Run {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {cpu_name()}, "
             f"{os.cpu_count()} cores, {args.threads} threads. Model file: `{args.folder.name}/{args.file}`. "
             f"Command: `python benchmarks/sr_self_ensemble.py {' '.join(sys.argv[1:])}`.", "",
             "Held-out images (verify's validation set), Y-PSNR dB, border 4 px shaved:", "",
             "| inputs | n | bicubic | single pass | x8 self-ensemble | ensemble gain |", "|---|---|---|---|---|---|"]
    for name, r in sorted(rows.items()):
        b, s1, s8 = (float(np.mean(r[k])) for k in ("bicubic", "single", "x8"))
        lines.append(f"| {name} | {len(r['single'])} | {b:.2f} | {s1:.2f} | {s8:.2f} | {s8 - s1:+.2f} |")
    lines += ["", f"64x64 face x4, median: single pass {ms_single:.1f} ms, x8 self-ensemble {ms_x8:.1f} ms.", ""]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
