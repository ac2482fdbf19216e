"""The quality gate: INT8 (ONNX Runtime and OpenVINO) vs FP32 on held-out images, baselines, latency, grid.

`verify(work_dir)` scores every artifact in work_dir against the references, writes verify.json,
verify.md (the tables) and grid.png, and returns the report. The gate fails when an INT8 artifact
loses more than `max_drop_db` PSNR (Y-PSNR for SR) against FP32 on the validation set; `package`
refuses to ship anything whose report failed or whose files changed since they were verified.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge_agent.enhance.tensors import bgr_to_nchw, crop_to, nchw_to_bgr, pad_to_multiple
from edge_agent.inference.manifest import sha256_file
from export_tools.export.backends import runner_for
from export_tools.export.metrics import low_light_extras, rgb_scores, to_u8, y_scores
from export_tools.export.onnx import FP32_NAME, ExportInfo
from export_tools.export.openvino import FP16_NAME
from export_tools.export.openvino import INT8_NAME as OV_INT8_NAME
from export_tools.export.quantize import INT8_NAME as ORT_INT8_NAME
from export_tools.export.samples import Sample

# artifact kind (manifest) -> file name in a work/version folder, and how it is labelled in tables
ARTIFACTS = {
    "onnx_fp32": FP32_NAME,
    "onnx_int8": ORT_INT8_NAME,
    "openvino_fp16": FP16_NAME,
    "openvino_int8": OV_INT8_NAME,
}
LABELS = {"onnx_fp32": "ORT FP32", "onnx_int8": "ORT INT8", "openvino_fp16": "OV FP16",
          "openvino_int8": "OV INT8"}
INT8_KINDS = ("onnx_int8", "openvino_int8")
REPORT_JSON = "verify.json"
DEFAULT_MAX_DROP_DB = 0.3
# the INT8 gate per task: the most an INT8 file may lose against FP32, on every validation condition
MAX_DROP_DB = {"face_sr": 0.1, "low_light": DEFAULT_MAX_DROP_DB}
# quality targets per task and score key: SR over bicubic on clean x4 inputs ("psnr") and on
# CCTV-degraded ones ("psnr_cctv"); low light over the best classic baseline on camera-true night
# frames, and an SSIM it must reach (structure, the harder half of low light)
TARGET_GAIN_DB = {"face_sr": {"psnr": 2.4, "psnr_cctv": 1.8}, "low_light": {"psnr": 5.0}}
TARGET_MIN = {"low_light": {"ssim": 0.70}}
# scores beyond PSNR / SSIM a task reports (per sample, averaged), and their column titles
EXTRA_COLUMNS = {"psnr_gt_mean": "PSNR at the reference's brightness (GT-mean)", "ciede2000": "CIEDE2000"}


class GateFailed(RuntimeError):
    pass


@dataclass
class Report:
    task: str
    metric: str  # "psnr" (RGB) or "y_psnr"
    max_drop_db: float
    passed: bool
    reasons: list[str]
    scores: dict[str, dict[str, float]]  # kind or baseline -> {psnr, ssim, psnr_<group>...}
    drops_db: dict[str, float]
    targets: dict[str, dict] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_input: str = ""
    files: dict[str, str] = field(default_factory=dict)  # relative file name -> sha256
    samples: list[str] = field(default_factory=list)
    threads: int = 2

    def save(self, work_dir: Path) -> Path:
        path = Path(work_dir) / REPORT_JSON
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        (Path(work_dir) / "verify.md").write_text(self.markdown(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, work_dir: Path) -> Report:
        path = Path(work_dir) / REPORT_JSON
        if not path.is_file():
            raise GateFailed(f"{path} not found: run `edge-export verify {work_dir}` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def markdown(self) -> str:
        metric = "Y-PSNR" if self.metric == "y_psnr" else "PSNR"
        groups = sorted({k.split("_", 1)[1] for s in self.scores.values() for k in s
                         if k.startswith("psnr_") and k not in EXTRA_COLUMNS})
        head = f"| model | {metric} (dB) | SSIM | " + "".join(f"{metric} {g} | " for g in groups)
        extras = [k for k in EXTRA_COLUMNS if any(k in s for s in self.scores.values())]
        head += "".join(f"{EXTRA_COLUMNS[k]} | " for k in extras)
        head += "drop vs FP32 (dB) | latency (ms) |"
        lines = [head, "|" + "---|" * (head.count("|") - 1)]
        for name, s in self.scores.items():
            drop = self.drops_db.get(name)
            lat = self.latency_ms.get(name)
            lines.append(
                f"| {LABELS.get(name, name)} | {s['psnr']:.2f} | {s['ssim']:.4f} | "
                + "".join(f"{s.get('psnr_' + g, float('nan')):.2f} | " for g in groups)
                + "".join(f"{s.get(k, float('nan')):.2f} | " for k in extras)
                + (f"{drop:+.3f} | " if drop is not None else "- | ")
                + (f"{lat:.1f} |" if lat is not None else "- |")
            )
        out = "\n".join(lines)
        out += f"\n\nGate (INT8 drop <= {self.max_drop_db} dB): {'PASSED' if self.passed else 'FAILED'}"
        for r in self.reasons:
            out += f"\n- {r}"
        for name, t in self.targets.items():
            out += (f"\n\nTarget {name}: {t['value']:.{3 if t['needs'] < 1 else 2}f} (needs >= {t['needs']}) -> "
                    f"{'met' if t['met'] else 'MISSED'}")
        if self.latency_input:
            out += f"\n\nLatency: {self.latency_input}, median, {self.threads} threads, pre + infer + post."
        return out + "\n"


def artifact_paths(work_dir: Path) -> dict[str, Path]:
    work_dir = Path(work_dir)
    found = {k: work_dir / f for k, f in ARTIFACTS.items() if (work_dir / f).is_file()}
    if "onnx_fp32" not in found:
        raise GateFailed(f"{work_dir / FP32_NAME} not found: nothing to verify against")
    return found


def file_hashes(work_dir: Path, kinds: dict[str, Path]) -> dict[str, str]:
    out = {}
    for path in kinds.values():
        out[path.name] = sha256_file(path)
        if path.suffix == ".xml":
            out[path.with_suffix(".bin").name] = sha256_file(path.with_suffix(".bin"))
    return out


def _score(out_rgb: np.ndarray, sample: Sample, task: str, scale: int) -> tuple[float, float, dict[str, float]]:
    """(PSNR, SSIM, extras) of one output: Y scores with the border shaved for SR; RGB scores, GT-mean
    PSNR and CIEDE2000 for low light."""
    if task == "face_sr":
        return (*y_scores(out_rgb, sample.reference, border=scale), {})
    return (*rgb_scores(out_rgb, sample.reference), low_light_extras(out_rgb, sample.reference))


def _run_rgb(run, sample: Sample, scale: int) -> np.ndarray:
    """Model output as the agent would deliver it: cropped, clipped, rounded to 8 bits."""
    out = crop_to(run(sample.feeds), sample.size, scale)
    return np.round(np.clip(out[0].transpose(1, 2, 0), 0.0, 1.0) * 255.0) / 255.0


def _aggregate(per_sample: list[tuple]) -> dict[str, float]:
    """(condition, group, psnr, ssim[, extras]) rows -> psnr / ssim of the main condition (""),
    psnr_<group> when there are groups, the mean of each extra score, and psnr_<condition>,
    ssim_<condition>, psnr_<condition>_<group>, <extra>_<condition> for every other condition."""
    rows_all = [(r[0], r[1], r[2], r[3], r[4] if len(r) > 4 else {}) for r in per_sample]
    res: dict[str, float] = {}
    groups = sorted({r[1] for r in rows_all})
    for cond in sorted({r[0] for r in rows_all}):
        rows = [(g, p, s, x) for c, g, p, s, x in rows_all if c == cond]
        pre = f"_{cond}" if cond else ""
        res[f"psnr{pre}"] = float(np.mean([p for _, p, _, _ in rows]))
        res[f"ssim{pre}"] = float(np.mean([s for _, _, s, _ in rows]))
        for key in sorted({k for *_, x in rows for k in x}):
            res[f"{key}{pre}"] = float(np.mean([x[key] for *_, x in rows if key in x]))
        if len(groups) > 1:
            for g in groups:
                res[f"psnr{pre}_{g}"] = float(np.mean([p for gg, p, _, _ in rows if gg == g]))
    return res


def latency_frame(task: str, scale: int) -> np.ndarray:
    """The benchmark input as the camera gives it (BGR uint8): a 1280x720 night frame or a 64x64 face."""
    import skimage.data

    img = skimage.data.astronaut()[:, :, ::-1]
    if task == "low_light":
        dark = cv2.resize(img, (1280, 720), interpolation=cv2.INTER_AREA)
        return (dark.astype(np.float32) * 0.08).astype(np.uint8)
    return cv2.resize(img[0:256, 128:384], (64, 64), interpolation=cv2.INTER_AREA)


def end_to_end(run, frame_bgr: np.ndarray, pad_multiple: int, scale: int, ratio: float | None) -> np.ndarray:
    """What the agent does per frame: BGR -> NCHW, pad, infer, crop, -> BGR."""
    image, size = pad_to_multiple(bgr_to_nchw(frame_bgr), pad_multiple)
    feeds = {"image": image}
    if ratio is not None:
        feeds["ratio"] = np.full((1, 1), ratio, dtype=np.float32)
    return nchw_to_bgr(crop_to(run(feeds), size, scale))


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def verify(work_dir: Path, *, samples: list[Sample] | None = None, max_drop_db: float | None = None,
           threads: int = 2, latency_repeats: int = 5, grid: bool = True) -> Report:
    """Score the artifacts in work_dir, write verify.json/verify.md/grid.png, return the report."""
    from export_tools.export.samples import ratio_fn_for, validation

    work_dir = Path(work_dir)
    info = ExportInfo.load(work_dir)
    kinds = artifact_paths(work_dir)
    if samples is None:
        samples = validation(info.task, info.scale, info.pad_multiple, ratio_fn_for(info.arch, info.checkpoint))
    if not samples:
        raise GateFailed("no validation images")
    per_kind: dict[str, list] = {}
    shown: dict[str, list[np.ndarray]] = {}
    for kind, path in tqdm(list(kinds.items()), desc="verify", unit="model"):
        run = runner_for(path, threads=threads, task=info.task, kind=kind)
        scores, outs = [], []
        for i, s in enumerate(samples):
            out = _run_rgb(run, s, info.scale)
            scores.append((s.condition, s.group, *_score(out, s, info.task, info.scale)))
            if i < 3:
                outs.append(out)
        per_kind[kind] = scores
        shown[kind] = outs
    scores = {k: _aggregate(v) for k, v in per_kind.items()}
    for name in samples[0].baselines:
        scores[name] = _aggregate([(s.condition, s.group, *_score(s.baselines[name], s, info.task, info.scale))
                                   for s in samples])
    if max_drop_db is None:
        max_drop_db = MAX_DROP_DB.get(info.task, DEFAULT_MAX_DROP_DB)
    fp32 = scores["onnx_fp32"]["psnr"]
    conds = ["psnr"] + [f"psnr_{c}" for c in sorted({s.condition for s in samples}) if c]
    # the drop of a file is its largest over the validation conditions (clean, CCTV)
    drops = {k: max(scores["onnx_fp32"][c] - scores[k][c] for c in conds) for k in kinds if k != "onnx_fp32"}
    reasons = []
    missing = [k for k in INT8_KINDS if k not in kinds]
    if missing:
        reasons.append(f"INT8 artifacts missing: {', '.join(ARTIFACTS[k] for k in missing)} (run quantize)")
    for k in INT8_KINDS:
        if k in drops and drops[k] > max_drop_db:
            reasons.append(f"{LABELS[k]} ({ARTIFACTS[k]}) loses {drops[k]:.3f} dB against FP32 "
                           f"(clean {scores[k]['psnr']:.2f} vs {fp32:.2f} dB), more than the allowed {max_drop_db} dB")
    report = Report(task=info.task, metric="y_psnr" if info.task == "face_sr" else "psnr",
                    max_drop_db=max_drop_db, passed=not reasons, reasons=reasons, scores=scores,
                    drops_db=drops, files=file_hashes(work_dir, kinds),
                    samples=[f"{s.group}/{s.name}" for s in samples], threads=threads)
    report.targets = _targets(info.task, scores, samples)
    if latency_repeats > 0:
        frame = latency_frame(info.task, info.scale)
        ratio = 5.0 if info.task == "low_light" else None
        for kind, path in kinds.items():
            run = runner_for(path, threads=threads, task=info.task, kind=kind)
            report.latency_ms[kind] = median_ms(
                lambda run=run: end_to_end(run, frame, info.pad_multiple, info.scale, ratio), latency_repeats)
        report.latency_input = f"{frame.shape[1]}x{frame.shape[0]} input"
    report.save(work_dir)
    if grid:
        write_grid(work_dir / "grid.png", samples[: len(shown["onnx_fp32"])], shown, info.scale)
    return report


def _targets(task: str, scores: dict, samples: list[Sample]) -> dict[str, dict]:
    """Gain of each model over the best baseline, per score key with a target (every validation
    image is held out of training)."""
    baselines = list(samples[0].baselines)
    if not baselines:
        return {}
    out = {}
    for key, needs in TARGET_GAIN_DB.get(task, {}).items():
        if key not in scores.get("onnx_fp32", {}):
            continue
        best = max(baselines, key=lambda b: scores[b][key])
        label = key.removeprefix("psnr").strip("_")
        for kind in ("onnx_fp32", *INT8_KINDS):
            if kind in scores:
                gain = scores[kind][key] - scores[best][key]
                name = f"{kind}_{label}_gain_over_{best}_db" if label else f"{kind}_gain_over_{best}_db"
                out[name] = {"value": gain, "needs": needs, "met": bool(gain >= needs)}
    for key, needs in TARGET_MIN.get(task, {}).items():
        for kind in ("onnx_fp32", *INT8_KINDS):
            if key in scores.get(kind, {}):
                value = scores[kind][key]
                out[f"{kind}_{key}"] = {"value": value, "needs": needs, "met": bool(value >= needs)}
    return out


def write_grid(path: Path, samples: list[Sample], outputs: dict[str, list[np.ndarray]], scale: int,
               cell_h: int = 160) -> Path:
    """Before/after grid: one row per image: input | baseline | each artifact | reference."""
    def cell(rgb_float: np.ndarray, label: str) -> np.ndarray:
        img = to_u8(rgb_float)[:, :, ::-1]
        w = max(1, round(img.shape[1] * cell_h / img.shape[0]))
        interp = cv2.INTER_NEAREST if img.shape[0] < cell_h else cv2.INTER_AREA
        img = np.ascontiguousarray(cv2.resize(img, (w, cell_h), interpolation=interp))
        cv2.rectangle(img, (0, 0), (w, 18), (0, 0, 0), -1)
        cv2.putText(img, label, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        return img

    rows = []
    for i, s in enumerate(samples):
        cells = [cell(s.input_rgb.astype(np.float32) / 255.0, "input")]
        cells += [cell(b, name) for name, b in s.baselines.items()]
        cells += [cell(outputs[k][i], LABELS[k]) for k in outputs if i < len(outputs[k])]
        cells.append(cell(s.reference, "reference"))
        rows.append(np.concatenate(cells, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows]
    cv2.imwrite(str(path), np.concatenate(rows, axis=0), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def require_passed(work_dir: Path) -> Report:
    """Raise GateFailed (saying why) unless verify passed and the files are the ones it verified."""
    report = Report.load(work_dir)
    if not report.passed:
        raise GateFailed("the quality gate failed for " f"{work_dir}: " + "; ".join(report.reasons))
    for name, digest in report.files.items():
        path = Path(work_dir) / name
        if not path.is_file() or sha256_file(path) != digest:
            raise GateFailed(f"{path} changed or vanished since it was verified; run verify again")
    return report
