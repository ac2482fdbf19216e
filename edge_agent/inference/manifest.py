"""The models/ manifest: which model files exist, their I/O spec and their sha256.

Written by `edge-export package`, read by the agent. Paths are relative to the models folder.
Pure data + hashing; no runtime imports here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.inference.base import ModelError

MANIFEST_NAME = "manifest.yaml"
ArtifactKind = Literal["onnx_fp32", "onnx_int8", "openvino_fp16", "openvino_int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IOSpec(_Strict):
    name: str
    shape: list[int | str]  # e.g. [1, 3, "H", "W"]
    dtype: str = "float32"
    layout: str | None = None  # "NCHW"
    color: str | None = None  # "RGB"
    range: list[float] | None = None  # [lo, hi]


class Artifact(_Strict):
    path: str  # .onnx or OpenVINO .xml
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bin: str | None = None  # OpenVINO weights file
    bin_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class DetectorDecode(_Strict):
    """How a face detector's outputs become boxes (read by edge_agent/enhance/face_cnn.py)."""

    family: Literal["centerface"]
    stride: int = Field(ge=1, le=64)  # output cell size in input pixels
    score_threshold: float = Field(gt=0.0, lt=1.0)  # default heatmap threshold
    nms_iou: float = Field(gt=0.0, le=1.0)


class ModelEntry(_Strict):
    version: str
    task: Literal["low_light", "face_sr", "face_detect"]
    scale: int = Field(default=1, ge=1, le=8)
    pad_multiple: int = Field(default=1, ge=1, le=256)
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    files: dict[ArtifactKind, Artifact]
    decode: DetectorDecode | None = None  # face detectors only
    card: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class Manifest(_Strict):
    schema_version: int = 1
    models: dict[str, ModelEntry]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_manifest(models_dir: Path) -> Manifest:
    path = Path(models_dir) / MANIFEST_NAME
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"model manifest {path} cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ModelError(f"model manifest {path} is not valid YAML: {exc}") from exc
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ModelError(f"model manifest {path} is invalid: {exc}") from exc


def verified_path(models_dir: Path, rel: str, expected_sha256: str) -> Path:
    """Return the absolute path after checking it exists and matches its sha256."""
    path = Path(models_dir) / rel
    if not path.is_file():
        raise ModelError(f"model file {path} is missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelError(
            f"model file {path} is corrupt: sha256 {actual[:12]}... does not match the manifest's "
            f"{expected_sha256[:12]}..."
        )
    return path


def verify_artifact(models_dir: Path, art: Artifact) -> tuple[Path, Path | None]:
    """Check a model file (and its OpenVINO weights) against the manifest; return their paths."""
    main = verified_path(models_dir, art.path, art.sha256)
    weights = None
    if art.bin is not None:
        if art.bin_sha256 is None:
            raise ModelError(f"manifest entry for {art.bin} has no bin_sha256")
        weights = verified_path(models_dir, art.bin, art.bin_sha256)
    return main, weights


def write_manifest(models_dir: Path, manifest: Manifest) -> Path:
    path = Path(models_dir) / MANIFEST_NAME
    text = yaml.safe_dump(manifest.model_dump(mode="json", exclude_none=True), sort_keys=False)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
