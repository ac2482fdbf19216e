"""Ship a verified work folder into models/<name>/<version>/ with a model card, and list it in the manifest.

Refuses (PackageError, saying why) when the quality gate failed, when files changed since they were
verified, when a file is over the size limit, or when models/ would grow over its budget.
The manifest is written through edge_agent.inference.manifest, the schema the agent reads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from edge_agent.config.schema import RATIO_RANGE
from edge_agent.inference.manifest import (
    MANIFEST_NAME,
    Artifact,
    Manifest,
    ModelEntry,
    load_manifest,
    sha256_file,
    write_manifest,
)
from export_tools.export.onnx import ExportInfo
from export_tools.export.tasks import TASKS
from export_tools.export.verify import ARTIFACTS, GateFailed, Report, require_passed

MAX_FILE_MB = 10.0
MAX_TOTAL_MB = 40.0
CARD_NAME = "MODEL_CARD.md"
EXTRA_FILES = ("grid.png", "verify.md")


class PackageError(RuntimeError):
    pass


def _mb(n_bytes: int) -> float:
    return n_bytes / (1 << 20)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _files_to_ship(work_dir: Path) -> dict[str, list[Path]]:
    """kind -> [main file, (.bin)] for every artifact present; all four kinds are required."""
    out = {}
    for kind, name in ARTIFACTS.items():
        main = work_dir / name
        if not main.is_file():
            raise PackageError(f"{main} missing: run `edge-export quantize {work_dir}` first")
        out[kind] = [main] + ([main.with_suffix(".bin")] if main.suffix == ".xml" else [])
    return out


def package(work_dir: Path, models_dir: Path, *, version: str, name: str | None = None,
            notes: str = "") -> Path:
    """Copy the verified artifacts into models_dir/<name>/<version>/ and update the manifest."""
    work_dir, models_dir = Path(work_dir), Path(models_dir)
    try:
        report = require_passed(work_dir)
    except GateFailed as exc:
        raise PackageError(f"refusing to ship {work_dir}: {exc}") from exc
    info = ExportInfo.load(work_dir)
    task = TASKS[info.task]
    name = name or task.model_name
    files = _files_to_ship(work_dir)
    extras = [work_dir / f for f in EXTRA_FILES if (work_dir / f).is_file()]
    for path in [p for group in files.values() for p in group] + extras:
        if _mb(path.stat().st_size) > MAX_FILE_MB:
            raise PackageError(f"{path.name} is {_mb(path.stat().st_size):.1f} MB, over the {MAX_FILE_MB} MB "
                               "limit for a shipped file: ship a more compact model")
    dest = models_dir / name / version
    new_bytes = sum(p.stat().st_size for group in files.values() for p in group) + sum(
        p.stat().st_size for p in extras)
    total = _folder_bytes(models_dir) - _folder_bytes(dest) + new_bytes
    if _mb(total) > MAX_TOTAL_MB:
        raise PackageError(f"models/ would hold {_mb(total):.1f} MB, over the {MAX_TOTAL_MB} MB budget")

    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in [p for group in files.values() for p in group] + extras:
        shutil.copy2(path, tmp / path.name)
    for fname, digest in report.files.items():  # the copies are the bytes that were verified
        if sha256_file(tmp / fname) != digest:
            shutil.rmtree(tmp)
            raise PackageError(f"copy of {fname} does not match its verified sha256")

    rel = f"{name}/{version}"
    artifacts = {}
    for kind, group in files.items():
        main = group[0]
        art = {"path": f"{rel}/{main.name}", "sha256": report.files[main.name]}
        if len(group) > 1:
            art.update(bin=f"{rel}/{group[1].name}", bin_sha256=report.files[group[1].name])
        artifacts[kind] = Artifact(**art)
    inputs, outputs = task.io_spec(info.scale)
    entry = ModelEntry(version=version, task=info.task, scale=info.scale, pad_multiple=info.pad_multiple,
                       inputs=inputs, outputs=outputs, files=artifacts, card=f"{rel}/{CARD_NAME}",
                       metrics=manifest_metrics(report))
    (tmp / CARD_NAME).write_text(model_card(name, version, info, report, entry, notes), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)

    manifest_path = models_dir / MANIFEST_NAME
    manifest = load_manifest(models_dir) if manifest_path.is_file() else Manifest(models={})
    manifest.models[name] = entry
    write_manifest(models_dir, manifest)
    return dest


def manifest_metrics(report: Report) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in ARTIFACTS:
        if kind in report.scores:
            out[f"{report.metric}_{kind}"] = round(report.scores[kind]["psnr"], 3)
            if "psnr_cctv" in report.scores[kind]:
                out[f"{report.metric}_cctv_{kind}"] = round(report.scores[kind]["psnr_cctv"], 3)
        if kind in report.drops_db:
            out[f"drop_db_{kind}"] = round(report.drops_db[kind], 3)
        if kind in report.latency_ms:
            out[f"latency_ms_{kind}"] = round(report.latency_ms[kind], 2)
    for name, target in report.targets.items():
        out[name] = round(target["value"], 3)
    return out


def _training_data(meta: dict) -> list[str]:
    return list(meta.get("train_images") or meta.get("training_images") or [])


def _set_dir(meta: dict) -> Path | None:
    recipe = meta.get("recipe") or {}
    folder = recipe.get("set_dir") or (recipe.get("data") or {}).get("set_dir")
    return Path(folder) if folder else None


def training_sources(meta: dict) -> list[str]:
    """Markdown table rows: the training images of the built set grouped by source, package, version
    and license (from the set's manifest.json, `edge-export data build`), with counts."""
    names = [n.removeprefix("set/") for n in _training_data(meta) if str(n).startswith("set/")]
    folder = _set_dir(meta)
    if not names or folder is None:
        return []
    path = folder / "manifest.json"
    if not path.is_file():
        return [f"(the training set's manifest {path} was not available when this card was written)"]
    by_path = {img["path"]: img for img in json.loads(path.read_text(encoding="utf-8"))["images"]}
    groups: dict[tuple, int] = {}
    for n in names:
        img = by_path.get(n)
        key = (img["source"], img.get("package") or "-", img.get("version") or "-", img.get("license") or "?") if img \
            else ("not in the manifest", "-", "-", "?")
        groups[key] = groups.get(key, 0) + 1
    rows = ["| source | package | version | license | images |", "|---|---|---|---|---|"]
    rows += [f"| {s} | {p} | {v} | {lic} | {c} |" for (s, p, v, lic), c in sorted(groups.items())]
    return rows


def model_card(name: str, version: str, info: ExportInfo, report: Report, entry: ModelEntry, notes: str) -> str:
    meta = info.meta
    io_rows = "\n".join(
        f"| {'input' if spec in entry.inputs else 'output'} | `{spec.name}` | {spec.shape} | {spec.dtype} | "
        f"{spec.layout or '-'} {spec.color or ''} | {spec.range} |"
        for spec in [*entry.inputs, *entry.outputs]
    )
    file_rows = "\n".join(f"| `{f}` | {d} |" for f, d in sorted(report.files.items()))
    data = _training_data(meta)
    data_text = (f"{len(data)} images: " + ", ".join(str(d) for d in data)) if data else (
        meta.get("origin") or "not recorded in the checkpoint")
    recipe = meta.get("recipe")
    recipe_text = ("```yaml\n" + yaml.safe_dump(recipe, sort_keys=False) + "```") if recipe else "not recorded"
    trained = {k: meta[k] for k in ("iterations", "minutes", "stages", "source", "origin") if k in meta}
    parts = [
        f"# {name} {version}",
        "",
        f"Task: `{info.task}`" + (f", scale x{info.scale}" if info.scale > 1 else "")
        + f". Architecture `{info.arch}` with `{json.dumps(info.arch_kwargs)}`."
        + f" Inputs must be padded to a multiple of {info.pad_multiple} (reflect/edge pad bottom-right, crop the output back).",
        "",
        notes.strip(),
        "",
        "## Inputs and outputs",
        "| | name | shape | dtype | layout | range |",
        "|---|---|---|---|---|---|",
        io_rows,
        "",
        "RGB in [0, 1] (divide 8-bit values by 255). Output clipped to [0, 1]."
        + (" `ratio` is the brightness ratio (target over current illumination), "
           f"{RATIO_RANGE[0]:g}..{RATIO_RANGE[1]:g}; KinD's evaluation uses reference over input "
           "illumination; the agent's auto ratio brings the output to mean luma 110."
           if info.task == "low_light" else ""),
        "",
        "## Quality (measured by `edge-export verify`)",
        f"Validation set ({len(report.samples)} images, none used in training): {', '.join(report.samples)}.",
        "",
        report.markdown(),
        "",
        f"Export parity vs PyTorch: max abs diff {info.parity_max_abs}, PSNR {info.parity_psnr_db} dB.",
        "",
        "![before/after](grid.png)",
        "",
        "## Training",
        f"Training data: {data_text}.",
        "",
        *(["Sources and licenses of the training images (`edge-export data build` manifest):", "",
           *training_sources(meta), ""] if training_sources(meta) else []),
        f"Run: `{json.dumps(trained)}`" if trained else "",
        "",
        "Recipe:",
        recipe_text,
        "",
        "## Files (sha256)",
        "| file | sha256 |",
        "|---|---|",
        file_rows,
        "",
    ]
    return "\n".join(parts)
