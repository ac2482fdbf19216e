"""Face SR on night crops: how often each SR model's output is identified, beside bicubic of the same crop.

Reads a finished `benchmarks/night_yield.py` run (default: its `new` variant) and, for every
published face matched to the ground truth, cuts the face box from the dark original snapshot and
prepares it as the agent does before SR (brighten_to_mid, then the crop denoiser). That one input
goes through bicubic x4 and through each SR model given with --model, and dlib's face descriptor
identifies each result against the gallery of clean source photos (rank 1, distance < 0.6), per
face-width bucket. Every column sees exactly the same crops, so the comparison is between upscalers
alone; the night-yield report measures the whole agent.

    python benchmarks/night_yield.py --variants new          # once: the clips and the agent run
    python benchmarks/sr_identify.py --model shipped=models --model v2=work_cache/face_sr_v2

Each --model is LABEL=DIR, DIR a models folder whose manifest has a `face_sr` entry (models/, or
the output folder of `edge-export build`). Report: benchmarks/reports/sr_identify.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_name  # benchmarks/machine.py
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import night_yield_clips as clips  # noqa: E402
import night_yield_score as score  # noqa: E402

MARGIN = 0.25  # faces.margin of the night-yield runs
PREPS = (("lifted + denoised (the default)", True), ("lifted, as cut (faces.denoise off)", False))


def x8(up):
    """The x8 self-ensemble of an upscaler on HxWx3 images: the mean over the 8 flips / transposes,
    each mapped back (EDSR, Lim et al. 2017; benchmarks/sr_self_ensemble.py measures its PSNR)."""
    def run(rgb: np.ndarray) -> np.ndarray:
        outs = []
        for k in range(8):
            x = rgb.transpose(1, 0, 2) if k & 4 else rgb
            x = x[::-1] if k & 1 else x
            x = x[:, ::-1] if k & 2 else x
            y = up(np.ascontiguousarray(x)).astype(np.float32)
            y = y[:, ::-1] if k & 2 else y
            y = y[::-1] if k & 1 else y
            outs.append(y.transpose(1, 0, 2) if k & 4 else y)
        return np.clip(np.mean(outs, axis=0) + 0.5, 0, 255).astype(np.uint8)
    return run


def load_upscalers(specs: list[str], backend: str, precision: str, threads: int, ensemble: bool = False) -> dict:
    from edge_agent.enhance.face_sr import FaceSuperResolver
    from edge_agent.inference.loader import load_model

    ups = {"bicubic": lambda rgb: cv2.resize(rgb, (rgb.shape[1] * 4, rgb.shape[0] * 4), interpolation=cv2.INTER_CUBIC)}
    for spec in specs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise SystemExit(f"--model {spec!r}: expected LABEL=DIR")
        model = load_model(Path(folder), "face_sr", backend=backend, precision=precision, threads=threads)
        if model.entry.scale != 4:
            raise SystemExit(f"--model {spec!r}: scale {model.entry.scale}, this benchmark compares x4 models")
        sr = FaceSuperResolver(model)
        name = f"{label} ({model.info.version}, {model.info.backend} {model.info.precision})"
        ups[name] = lambda rgb, sr=sr: sr.upscale(np.ascontiguousarray(rgb[:, :, ::-1]))[:, :, ::-1]
        if ensemble:
            ups[f"{name}, x8 self-ensemble"] = x8(ups[name])
    return ups


def matched_faces(truths, snaps_by_cam):
    """(snapshot, published face, detection box, ground-truth face) for every matched night face."""
    for fam, t in truths:
        if fam != "faces":
            continue
        for snap in snaps_by_cam.get(t.name, []):
            pairs, _unmatched = score.match_faces(t, snap, MARGIN)
            for g, match in pairs:
                if match is not None:
                    yield snap, match[1], match[0], g


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=DIR", help="an SR model folder (repeat)")
    ap.add_argument("--cache", type=Path, default=ROOT / "work_cache" / "night_yield")
    ap.add_argument("--variant", default="new", help="the night-yield run whose published faces are used")
    ap.add_argument("--backend", default="openvino", choices=("auto", "onnxruntime", "openvino"))
    ap.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--x8", action="store_true", help="add each model's x8 self-ensemble as a row")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "sr_identify.md")
    args = ap.parse_args()
    events = args.cache / "runs" / args.variant / "events"
    if not (args.cache / "runs" / args.variant / "done.json").is_file():
        raise SystemExit(f"no finished night-yield run in {events.parent}; "
                         f"run: python benchmarks/night_yield.py --variants {args.variant}")
    ups = load_upscalers(args.model, args.backend, args.precision, args.threads, args.x8)
    specs = clips.catalogue()
    truths = clips.build(args.cache / "clips", specs)
    faces = clips.load_faces()
    held_out = {f.identity for f in faces if f.held_out}
    ident = score.Identifier()
    for f in faces:
        ident.enrol(f.identity, (f.rgb * 255 + 0.5).astype("uint8"), f.box)
    snaps = score.read_events(events)
    hits: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    matched = list(matched_faces(truths, snaps))
    for snap, f, det, g in tqdm(matched, desc="faces", unit="face"):
        original = score.image(snap, score._original_name(snap.doc))
        if original is None:
            continue
        crop_box = f["box"]
        inner = tuple(v * 4 for v in (det[0] - crop_box[0], det[1] - crop_box[1], det[2], det[3]))
        keys = [score.bucket(g["box"][2]), "all"] + (["held-out"] if g["identity"] in held_out else [])
        for prep, denoise in PREPS:
            crop = score.agent_crop(original, crop_box, denoise)
            for label, up in ups.items():
                hit = ident.identify(up(crop), inner) == g["identity"]
                for k in keys:
                    hits[(prep, label)][k][0] += hit
                    hits[(prep, label)][k][1] += 1
    buckets = [b for _lo, _hi, b in score.BUCKETS]
    L = ["# Face SR on night crops: identification per upscaler", "",
         f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
         f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs  ",
         f"Command: `python benchmarks/sr_identify.py {' '.join(sys.argv[1:])}`  ",
         f"Faces: {len(matched)} published night faces of the night-yield run `{args.variant}` matched to the "
         "ground truth; each cut from the dark original snapshot and lifted to mid-grey as the agent does, "
         "then denoised as the agent does or left as cut, upscaled x4 by each row's method and identified "
         "by dlib against the clean gallery (rank 1, distance < 0.6). held-out = identities none of our "
         "models was trained on.", "",
         "| crop | upscaler | " + " | ".join(buckets) + " | all | held-out |", "|---|---|" + "---|" * (len(buckets) + 2)]
    for (prep, label), d in hits.items():
        L.append(f"| {prep} | {label} | " + " | ".join(score.pct(*d.get(b, (0, 0))) for b in buckets)
                 + f" | {score.pct(*d.get('all', (0, 0)))} | {score.pct(*d.get('held-out', (0, 0)))} |")
    text = "\n".join(L) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
