"""Resolve a model by name through models/manifest.yaml, verify its sha256 and open a runner.

Backends: "openvino" or "onnxruntime"; "auto" prefers OpenVINO when it is installed and the
manifest has an OpenVINO file for the model. Precision "int8" wants the INT8 artifact of the
backend, "fp32" the full-precision one (OpenVINO: the FP16-compressed IR, computed in f32).
When the asked artifact is not in the manifest, another kind for the same backend is used and
the log says so. A missing or corrupt file is never skipped: it is a ModelError naming the file.
An INT8 file that computes differently on this CPU than its float original (int8_check) is not
used: the float file of the same backend is, and the log says why.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import edge_agent
from edge_agent.inference.base import ModelError, ModelRunner
from edge_agent.inference.int8_check import INT8_MIN_PSNR_DB, PROBE_TASKS, agreement_db, probe_feeds
from edge_agent.inference.manifest import MANIFEST_NAME, ModelEntry, load_manifest, verify_artifact
from edge_agent.records import ModelInfo

log = logging.getLogger(__name__)

Backend = Literal["auto", "onnxruntime", "openvino"]
Precision = Literal["int8", "fp32"]

# (backend, precision) -> artifact kinds in order of preference
_KINDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("openvino", "int8"): ("openvino_int8", "openvino_fp16"),
    ("openvino", "fp32"): ("openvino_fp16", "openvino_int8"),
    ("onnxruntime", "int8"): ("onnx_int8", "onnx_fp32"),
    ("onnxruntime", "fp32"): ("onnx_fp32", "onnx_int8"),
}
_FLOAT_KIND = {"openvino": "openvino_fp16", "onnxruntime": "onnx_fp32"}
_KIND_PRECISION = {"onnx_fp32": "fp32", "onnx_int8": "int8", "openvino_fp16": "fp16", "openvino_int8": "int8"}
# Input shapes a task's OpenVINO runner compiles statically (OpenVinoRunner static_shapes): a
# camera's frames, its tiles and the auto-ratio probe come in a few sizes. Face crops vary in size
# and stay dynamic.
OV_STATIC_SHAPES = {"low_light": 3}


def ov_options(task: str, kind: str) -> dict:
    """OpenVinoRunner options for a model file: the one place the agent, the quality gate (verify)
    and the benchmarks take them from. An image-to-image INT8 IR (the tasks the gate scores and the
    load-time agreement check probes) runs its float parts at the CPU's default precision (BF16
    where the CPU has it): verify gates exactly that. Every other file computes in f32."""
    precision = None if kind == "openvino_int8" and task in PROBE_TASKS else "f32"
    return {"precision_hint": precision, "static_shapes": OV_STATIC_SHAPES.get(task, 0)}


@dataclass(slots=True)
class LoadedModel:
    """A verified, opened model: manifest entry (I/O spec, scale, padding), runner and provenance."""

    entry: ModelEntry
    runner: ModelRunner
    info: ModelInfo
    path: Path | None = None  # the model file that was loaded


def default_models_dir() -> Path:
    """NIGHTWATCH_MODELS if set, else the models/ folder next to the edge_agent package."""
    env = os.environ.get("NIGHTWATCH_MODELS")
    if env:
        return Path(env)
    return Path(edge_agent.__file__).resolve().parents[1] / "models"


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def _choose_backend(entry: ModelEntry, backend: str, name: str) -> str:
    if backend in ("onnxruntime", "openvino"):
        if backend == "openvino" and not openvino_available():
            raise ModelError("backend 'openvino' was asked for but OpenVINO is not installed "
                             "(install the 'openvino' extra, or use backend onnxruntime)")
        return backend
    if backend != "auto":
        raise ModelError(f"unknown backend {backend!r}; use auto, onnxruntime or openvino")
    has_ov = any(k.startswith("openvino_") for k in entry.files)
    if openvino_available() and has_ov:
        return "openvino"
    if openvino_available():
        log.info("model %s has no OpenVINO file in the manifest; using ONNX Runtime", name)
    return "onnxruntime"


def load_model(
    models_dir: Path,
    name: str,
    backend: Backend = "auto",
    precision: Precision = "int8",
    threads: int = 0,
) -> LoadedModel:
    """Load model `name` from the manifest in models_dir; see the module docstring."""
    models_dir = Path(models_dir)
    if precision not in ("int8", "fp32"):
        raise ModelError(f"unknown precision {precision!r}; use int8 or fp32")
    manifest = load_manifest(models_dir)
    entry = manifest.models.get(name)
    if entry is None:
        known = ", ".join(sorted(manifest.models)) or "(none)"
        raise ModelError(f"model {name!r} is not in {models_dir / MANIFEST_NAME}; known models: {known}")
    chosen_backend = _choose_backend(entry, backend, name)
    wanted = _KINDS[(chosen_backend, precision)]
    kind = next((k for k in wanted if k in entry.files), None)
    if kind is None:
        raise ModelError(
            f"model {name!r} in {models_dir / MANIFEST_NAME} has no {chosen_backend} file "
            f"(has: {', '.join(entry.files) or 'none'})"
        )
    if kind != wanted[0]:
        log.warning("model %s: %s is not in the manifest; using %s instead", name, wanted[0], kind)
    runner, path = _open(models_dir, entry, kind, chosen_backend, threads)
    float_kind = _FLOAT_KIND[chosen_backend]
    if kind != float_kind and float_kind in entry.files and entry.task in PROBE_TASKS:
        float_runner, float_path = _open(models_dir, entry, float_kind, chosen_backend, threads)
        agree = agreement_db(runner, float_runner, probe_feeds(entry.task, entry.pad_multiple,
                                                               [s.name for s in entry.inputs]))
        if agree < INT8_MIN_PSNR_DB:
            log.warning("model %s: %s computes differently on this CPU (%.1f dB from %s, needs >= %.0f dB); "
                        "using the float file", name, path.name, agree, float_path.name, INT8_MIN_PSNR_DB)
            runner, path, kind = float_runner, float_path, float_kind
    _check_io(entry, runner, path)
    info = ModelInfo(name=name, version=entry.version, backend=chosen_backend, precision=_KIND_PRECISION[kind])
    log.info("loaded model %s %s (%s, %s) from %s", name, entry.version, chosen_backend, kind, path)
    return LoadedModel(entry=entry, runner=runner, info=info, path=path)


def _open(models_dir: Path, entry: ModelEntry, kind: str, backend: str, threads: int) -> tuple[ModelRunner, Path]:
    """Verify the artifact's sha256 and open it with the backend's runner."""
    path, _weights = verify_artifact(models_dir, entry.files[kind])
    if backend == "openvino":
        from edge_agent.inference.openvino_runner import OpenVinoRunner

        return OpenVinoRunner(path, threads=threads, **ov_options(entry.task, kind)), path
    from edge_agent.inference.onnxruntime_runner import OrtRunner

    return OrtRunner(path, threads=threads), path


def _check_io(entry: ModelEntry, runner: ModelRunner, path: Path) -> None:
    """The manifest's input/output names must exist in the model file."""
    have_in = {s.name for s in runner.inputs}
    have_out = {s.name for s in runner.outputs}
    missing = [s.name for s in entry.inputs if s.name not in have_in]
    missing += [s.name for s in entry.outputs if s.name not in have_out]
    if missing:
        raise ModelError(
            f"model file {path} does not match its manifest entry: no tensor(s) {missing} "
            f"(inputs {sorted(have_in)}, outputs {sorted(have_out)})"
        )
