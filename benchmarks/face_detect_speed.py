"""Face detection cost per 1280x720 frame: one person-sized motion region vs the whole frame.

The shipped CNN detector (models/face_detector, through our inference layer) on ONNX Runtime and
OpenVINO with the agent's search plan (edge_agent.enhance.faces.plan_search, the shipped FacesConfig
defaults), side by side with the LBP fallback, interleaved in one run so all see the same load.
The frame is a real photo scene with a real face pasted in (../shared/datasets; scikit-image's
astronaut without them), darkened as at night. Writes benchmarks/reports/face_detect_speed.md.

    python benchmarks/face_detect_speed.py [--threads 2] [--runs 30] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_name  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config.schema import FacesConfig  # noqa: E402
from edge_agent.enhance.face_cnn import load_face_net  # noqa: E402
from edge_agent.enhance.faces import FaceDetector  # noqa: E402
from edge_agent.inference.loader import ModelError, default_models_dir  # noqa: E402

W, H = 1280, 720
# a person walking near the camera: 14 % of the width, 60 % of the height (a 432 px tall body)
NEAR = (0.40, 0.25, 0.14, 0.60)
# a far person: 5 % x 25 % (180 px tall, under upscale_below_px: searched upscaled)
FAR = (0.70, 0.40, 0.05, 0.25)


def scene() -> np.ndarray:
    """1280x720 BGR: a real photo scene with a real face at the near person's head, night-dark."""
    import skimage.data

    try:
        from export_tools.data.images import held_out_faces, read_rgb, train_paths

        bg = read_rgb(sorted(train_paths())[0])
        face = read_rgb(held_out_faces()[0])
    except Exception:  # no shared datasets: scikit-image only
        bg = skimage.data.coffee()
        face = skimage.data.astronaut()[40:260, 150:330]
    frame = cv2.resize(bg, (W, H), interpolation=cv2.INTER_CUBIC)
    x, y, w, h = NEAR
    fw = int(w * W * 0.6)
    fh = int(fw * face.shape[0] / face.shape[1])
    fx, fy = int((x + w * 0.2) * W), int(y * H)
    frame[fy : fy + fh, fx : fx + fw] = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)
    night = (frame.astype(np.float32) * 0.25 + np.random.default_rng(0).normal(0, 2, frame.shape)).clip(0, 255)
    return cv2.cvtColor(night.astype(np.uint8), cv2.COLOR_RGB2BGR)


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "face_detect_speed.md")
    args = ap.parse_args()
    cfg = FacesConfig()
    frame = scene()
    cases = {"one near person": [NEAR], "one far person (upscaled)": [FAR], "near + far": [NEAR, FAR],
             "whole frame": None}
    detectors = {}
    for backend in ("onnxruntime", "openvino"):
        for precision in ("fp32", "int8"):  # the loader's names; the row says what file it loaded
            try:
                net = load_face_net(default_models_dir(), backend=backend, threads=args.threads, precision=precision)
            except ModelError as exc:
                print(f"skipping {backend} {precision}: {exc}")
                continue
            name = f"CenterFace {net.info.backend} {net.info.precision} ({net.path.name})"
            if name not in detectors:  # int8 falls back to the float file when none shipped
                detectors[name] = FaceDetector(cfg, net=net)
    detectors["LBP cascade (fallback)"] = FaceDetector(FacesConfig(detector="lbp"))
    cv2.setNumThreads(args.threads)
    rows = []
    for name, det in detectors.items():
        for case, regions in cases.items():
            ms = timed(lambda d=det, r=regions: d.detect(frame, r), args.runs)
            found = len(det.detect(frame, regions))
            pixels = sum(int((x1 - x0) * (y1 - y0) * s * s) for x0, y0, x1, y1, s in det.plan(W, H, regions)) \
                if det.kind == "cnn" else W * H
            rows.append((name, case, statistics.median(ms), float(np.percentile(ms, 90)), pixels, found))
            print(f"{name:34s} {case:28s} median {rows[-1][2]:7.1f} ms  p90 {rows[-1][3]:7.1f}  faces {found}")
    L = ["# Face detection cost per 1280x720 frame", "",
         f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
         f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; {args.threads} inference threads; "
         f"{args.runs} runs per cell after a warm-up. Command: `python benchmarks/face_detect_speed.py`.", "",
         f"Search plan: the shipped defaults (max_regions {cfg.max_regions}, upscale x{cfg.upscale} below "
         f"{cfg.upscale_below_px} px tall, max_pixels {cfg.max_pixels}). Regions are the motion boxes as "
         "normalized (x, y, w, h): near person "
         f"{NEAR}, far person {FAR}. The frame holds one real face on the near person.", "",
         "| detector | motion regions | median ms | p90 ms | pixels the net sees | faces found |",
         "|---|---|---|---|---|---|"]
    L += [f"| {n} | {c} | {m:.1f} | {p:.1f} | {px:,} | {f} |" for n, c, m, p, px, f in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(L) + "\n")
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
