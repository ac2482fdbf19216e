"""Night yield end to end: generated night clips through the real agent, old and new side by side.

    python benchmarks/night_yield.py [--variants old,new,enhanced,both] [--quick] [--out PATH]

Needs the benchmark extra (`pip install -e '.[bench]'`: dlib-bin + face-recognition-models, for
identification only) and ../shared/datasets (the dev faces and T91 scenes); ffmpeg makes the clips
H.264 (without it they are MPEG-4 Part 2, and the report says so).

Clips (benchmarks/night_yield_clips.py) are rendered once into work_cache/night_yield/. Every
variant runs `edge-agent run` (the real agent, a subprocess) on all of them, four cameras per run,
each clip paced to its own 10 fps, publishing to the local sink; the published files are scored
against the clips' ground truth (benchmarks/night_yield_score.py). Variants:
- old:      the LBP cascade and the fixed motion threshold (noise_factor 0, no relight test)
- new:      the shipped defaults (night face crops fused over 3 frames)
- no-fusion: the defaults, but each night face crop cut from its own frame alone (faces.fuse_frames 1)
- enhanced: the defaults, faces searched on the low-light-enhanced frame
- both:     the defaults, faces searched on both frames, boxes merged
- both-original: the defaults, faces searched on both frames, crops still cut from the original
- crop-enhanced: the defaults, but face crops (and their SR) cut from the low-light-enhanced frame
- no-denoise: the defaults, but face crops published and upscaled as cut (faces.denoise false)
The report goes to benchmarks/reports/night_yield.md (and .json beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from machine import cpu_name, models_line  # benchmarks/machine.py
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import night_yield_clips as clips  # noqa: E402
import night_yield_score as score  # noqa: E402

VARIANTS = {
    "old": {"motion": {"noise_factor": 0, "reject_lighting": False},
            "faces": {"detector": "lbp", "crop_from": "enhanced"}},
    "new": {},
    "enhanced": {"faces": {"detect_on": "enhanced", "crop_from": "enhanced"}},
    "both": {"faces": {"detect_on": "both", "crop_from": "enhanced"}},
    "both-original": {"faces": {"detect_on": "both"}},
    "crop-enhanced": {"faces": {"crop_from": "enhanced"}},
    "no-denoise": {"faces": {"denoise": False}},
    "no-fusion": {"faces": {"fuse_frames": 1}},
}
GROUP = 4  # cameras per agent run
MARGIN = 0.25  # faces.margin (the default; the scorer undoes it)


def camera_cfg(truth, variant: dict) -> dict:
    cam = {
        "name": truth.name,
        "source": {"file": truth.path, "loop": False},
        "snapshots": {"interval_s": 0.5, "max_events_per_minute": 120},
        "faces": {"margin": MARGIN},
    }
    for section, values in variant.items():
        cam.setdefault(section, {}).update(values)
    return cam


def run_variant(name: str, truths, out: Path, threads: int, reuse: bool = False, models: Path = ROOT / "models"
                ) -> float:
    """Run the agent over every clip for one variant; returns wall seconds.

    reuse: keep a finished earlier run of the same clips (out/done.json) and only score it again."""
    done = out / "done.json"
    clips_key = sorted(t.name for _f, t in truths)
    if reuse and done.is_file():
        prev = json.loads(done.read_text())
        if prev.get("clips") == clips_key:
            return float(prev["wall_s"])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.time()
    groups = [truths[i : i + GROUP] for i in range(0, len(truths), GROUP)]
    for gi, group in enumerate(tqdm(groups, desc=f"agent [{name}]", unit="run")):
        cfg = {
            "site": "bench",
            "cameras": [camera_cfg(t, VARIANTS[name]) for _f, t in group],
            "models": {"dir": str(models)},
            "inference": {"threads": threads} if threads else {},
            "pipeline": {"queue_size": 8},
            "publish": {"sink": "local", "local": {"dir": str(out / "events")}},
            "api": {"enabled": False},
            "state_dir": str(out / "state"),
            "logging": {"level": "WARNING"},
        }
        cfg_path = out / f"agent-{gi:02d}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log = out / f"agent-{gi:02d}.log"
        with open(log, "w") as fh:
            rc = subprocess.run([sys.executable, "-m", "edge_agent", "run", "--config", str(cfg_path)],
                                stdout=fh, stderr=subprocess.STDOUT, timeout=600, cwd=ROOT).returncode
        if rc != 0:
            raise SystemExit(f"edge-agent run failed for variant {name} (exit {rc}); see {log}")
    wall = time.time() - t0
    done.write_text(json.dumps({"clips": clips_key, "wall_s": wall}))
    return wall


def score_variant(out: Path, truths, ident, held_out) -> dict:
    snaps = score.read_events(out / "events")
    res: dict = {"passes": {}, "false_events": {}, "tally": {}}
    for family in ("faces", "clean", "motion", "empty"):
        fam = [t for f, t in truths if f == family]
        hit = total = 0
        tally = score.Tally()
        false_events = {}
        for t in fam:
            s = snaps.get(t.name, [])
            h, n = score.passes_with_event(t, s, t.fps)
            hit, total = hit + h, total + n
            if family == "empty":
                false_events[t.name] = score.event_count(s)
            if family in ("faces", "clean"):
                score.score_faces(t, s, MARGIN, tally, ident if family == "faces" else None, held_out)
        res["passes"][family] = (hit, total)
        res["false_events"].update(false_events)
        res["tally"][family] = tally
    return res


def fmt_recall(t: score.Tally) -> list[str]:
    cells = [score.pct(t.found[b], t.gt[b]) for _lo, _hi, b in score.BUCKETS]
    cells.append(score.pct(sum(t.found.values()), sum(t.gt.values())))
    return cells


def fmt_ident(d: dict, key: str) -> str:
    a, n = d.get(key, (0, 0))
    return score.pct(a, n)


def report(results: dict, truths, walls: dict, codec: str, threads: int, models: Path = ROOT / "models") -> str:
    buckets = [b for _lo, _hi, b in score.BUCKETS]
    L = ["# Night yield: generated night clips through the real agent", "",
         f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
         f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; inference threads: {threads or 'default'}  ",
         f"Clips: {len(truths)} ({', '.join(f'{f}: {sum(1 for g, _ in truths if g == f)}' for f in ('faces', 'clean', 'motion', 'empty'))}), "
         f"1280x720, 10 fps, 10 s, {codec}. Command: `python benchmarks/night_yield.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`.  ",
         f"Models: {models_line(models)}.", "",
         "Variants: **old** = LBP cascade + fixed motion threshold 25 (noise_factor 0, no relight test), crops "
         "from the enhanced frame; "
         "**new** = the shipped defaults (crops cut from the original, averaged with the same face in the 2 "
         "frames before, lifted to mid-grey, denoised); **no-fusion** = the defaults with each crop cut from "
         "its own frame alone (faces.fuse_frames 1); **enhanced** / "
         "**both** = faces searched on the enhanced frame / on both frames (crops from the enhanced frame); "
         "**both-original** = faces searched on both frames, crops cut from the original as by default; "
         "**crop-enhanced** = the defaults with crops cut from the low-light-enhanced frame; **no-denoise** = "
         "the defaults with crops published and upscaled as cut (faces.denoise false).", "",
         "## Motion: person passes that raised an event, and false events", "",
         "| variant | night faces clips | low-contrast clips (luma 15-30, +10-14, sigma 2-4) | events on no-person clips |",
         "|---|---|---|---|"]
    for v, r in results.items():
        fe = sum(r["false_events"].values())
        detail = ", ".join(f"{k.split('_', 1)[1]}: {n}" for k, n in sorted(r["false_events"].items()) if n)
        L.append(f"| {v} | {score.pct(*r['passes']['faces'])} | {score.pct(*r['passes']['motion'])} | "
                 f"{fe}{' (' + detail + ')' if detail else ''} |")
    L += ["", "## Faces found in the published snapshots (IoU >= 0.3), by face width", "",
          "| variant | frames | " + " | ".join(buckets) + " | all | false faces / frame | super-resolved | frames fused (mean) | found in |",
          "|---|---|" + "---|" * (len(buckets) + 5)]
    for fam in ("faces", "clean"):
        for v, r in results.items():
            t = r["tally"][fam]
            ff = f"{t.false_faces / t.frames:.3f}" if t.frames else "n/a"
            where = ", ".join(f"{k} {n}" for k, n in sorted(t.by_frame.items()))
            fused = f"{sum(t.fused) / len(t.fused):.2f}" if t.fused else "n/a"
            L.append(f"| {v} ({'night' if fam == 'faces' else 'clean'}) | {t.frames} | " + " | ".join(fmt_recall(t))
                     + f" | {ff} | {t.sr} | {fused} | {where} |")
    L += ["", "## How identifiable the published face crops are (night clips)", "",
          "Share of matched faces whose published crop (super-resolved where SR ran) is identified against a "
          "gallery of the clean source photos by dlib's face descriptor (rank 1, distance < 0.6), beside "
          "the operator's baseline: the same box cut from the dark original snapshot, gamma to mid-gray, "
          "bicubic x4; and that baseline with the agent's crop denoising before the bicubic. \"its crop, "
          "bicubic\" is the published crop as it went into SR (fused, lifted, denoised) upscaled by bicubic "
          "instead (super-resolved faces only): what the SR model itself is up against. held-out = "
          "identities none of our models was trained on.", "",
          "| variant | crops | " + " | ".join(buckets) + " | all | held-out |", "|---|---|" + "---|" * (len(buckets) + 2)]
    for v, r in results.items():
        t = r["tally"]["faces"]
        for label, d in (("published", t.ident_ours), ("its crop, bicubic", t.ident_crop_bicubic),
                         ("gamma+bicubic", t.ident_base), ("gamma+denoise+bicubic", t.ident_denoised)):
            L.append(f"| {v} | {label} | " + " | ".join(fmt_ident(d, b) for b in buckets)
                     + f" | {fmt_ident(d, 'all')} | {fmt_ident(d, 'held-out')} |")
    L += ["", "## Per-stage time (ms, mean over published snapshots of the night clips)", "",
          "| variant | " + " | ".join(("motion", "low_light", "face_detect", "face_sr")) + " | agent wall s |", "|---|---|---|---|---|---|"]
    for v, r in results.items():
        sm = r["tally"]["faces"].stage_ms
        cells = [f"{sum(sm[k]) / len(sm[k]):.1f}" if sm.get(k) else "-" for k in ("motion", "low_light", "face_detect", "face_sr")]
        L.append(f"| {v} | " + " | ".join(cells) + f" | {walls[v]:.0f} |")
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="old,new,no-fusion,enhanced,both,crop-enhanced,no-denoise")
    ap.add_argument("--cache", type=Path, default=ROOT / "work_cache" / "night_yield")
    ap.add_argument("--quick", action="store_true", help="a quarter of the clips (a smoke run)")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0 = the agent's default)")
    ap.add_argument("--no-identify", action="store_true", help="skip identification (no dlib needed)")
    ap.add_argument("--reuse", action="store_true", help="score finished earlier agent runs again (no rerun)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "night_yield.md")
    ap.add_argument("--models", type=Path, default=ROOT / "models",
                    help="models folder the agent loads (default: the shipped models/; a candidate's "
                         "`edge-export package` folder to measure it before shipping)")
    args = ap.parse_args()
    args.models = args.models.resolve()
    if not (args.models / "manifest.yaml").is_file():
        ap.error(f"--models {args.models}: no manifest.yaml there")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    specs = clips.catalogue(n_faces=4 if args.quick else 16, n_motion=2 if args.quick else 8)
    with tqdm(total=len(specs), desc="clips", unit="clip") as bar:
        truths = clips.build(args.cache / "clips", specs, bar)
    ident = None
    faces = clips.load_faces()
    held_out = {f.identity for f in faces if f.held_out}
    if not args.no_identify:
        ident = score.Identifier()
        for f in faces:
            ident.enrol(f.identity, (f.rgb * 255 + 0.5).astype("uint8"), f.box)
    results, walls = {}, {}
    for v in variants:
        shipped = args.models == (ROOT / "models").resolve()
        out = args.cache / "runs" / (v if shipped else f"{v}@{args.models.name}")
        walls[v] = run_variant(v, truths, out, args.threads, args.reuse, args.models)
        results[v] = score_variant(out, truths, ident, held_out)
    codec = truths[0][1].codec if truths else "?"
    text = report(results, truths, walls, codec, args.threads, args.models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw = {v: {"passes": r["passes"], "false_events": r["false_events"],
               "faces": {fam: {"gt": dict(t.gt), "found": dict(t.found), "false_faces": t.false_faces,
                               "frames": t.frames, "sr": t.sr, "fused": t.fused, "ident_ours": dict(t.ident_ours),
                               "ident_base": dict(t.ident_base), "ident_denoised": dict(t.ident_denoised),
                               "ident_crop_bicubic": dict(t.ident_crop_bicubic)}
                         for fam, t in r["tally"].items()}}
           for v, r in results.items()}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print(text)
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
