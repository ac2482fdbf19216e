"""PyTorch -> ONNX export with dynamic H/W and a parity check against PyTorch on real images."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from export_tools.export.metrics import psnr
from export_tools.export.tasks import TaskSpec, task_for_arch

OPSET = 17
# ONNX Runtime 1.31 refuses IR 14 (onnx 1.23's default); IR 10 is read by ORT >= 1.16 and OpenVINO.
IR_VERSION = 10
EXPORT_INFO = "export.json"
FP32_NAME = "model_fp32.onnx"


class ExportError(RuntimeError):
    pass


@dataclass
class ExportInfo:
    """What `export` learned about the model; read by quantize, verify and package."""

    task: str
    arch: str
    arch_kwargs: dict
    scale: int
    pad_multiple: int
    checkpoint: str | None
    meta: dict
    parity_max_abs: float | None = None
    parity_psnr_db: float | None = None

    def save(self, out_dir: Path) -> Path:
        path = Path(out_dir) / EXPORT_INFO
        path.write_text(json.dumps(asdict(self), indent=2, default=str), encoding="utf-8")
        return path

    @classmethod
    def load(cls, work_dir: Path) -> ExportInfo:
        path = Path(work_dir) / EXPORT_INFO
        if not path.is_file():
            raise ExportError(f"{path} not found: run `edge-export export` into {work_dir} first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def model_scale(model: torch.nn.Module, task: TaskSpec) -> int:
    if task.task == "low_light":
        return 1
    return int(getattr(model, "scale", 4))


def model_pad_multiple(model: torch.nn.Module) -> int:
    return int(getattr(model, "pad_multiple", 1))


def sample_inputs(task: TaskSpec, image: np.ndarray, ratio: float = 5.0) -> dict[str, np.ndarray]:
    """Feeds for one NCHW float32 image, named as the exported graph expects."""
    feeds = {"image": np.ascontiguousarray(image, dtype=np.float32)}
    if "ratio" in task.input_names:
        feeds["ratio"] = np.full((1, 1), ratio, dtype=np.float32)
    return feeds


def export_module(model: torch.nn.Module, task: TaskSpec, out_path: Path, *,
                  sample_hw: tuple[int, int] = (64, 64), opset: int = OPSET) -> Path:
    """Trace `model` to ONNX with input names `image` (+ `ratio`) and output `output`, dynamic H/W."""
    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use >= 17")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    mult = model_pad_multiple(model)
    h = -(-sample_hw[0] // mult) * mult
    w = -(-sample_hw[1] // mult) * mult
    args: tuple = (torch.rand(1, 3, h, w),)
    if "ratio" in task.input_names:
        args = (*args, torch.full((1, 1), 3.0))
    dynamic = {"image": {2: "H", 3: "W"}, task.output_name: {2: "H_out", 3: "W_out"}}
    tmp = out_path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, args, str(tmp), dynamo=False, opset_version=opset,
                          input_names=list(task.input_names), output_names=[task.output_name],
                          dynamic_axes=dynamic, do_constant_folding=True)
    proto = onnx.load(str(tmp))
    proto.ir_version = min(proto.ir_version, IR_VERSION)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_path))
    tmp.unlink(missing_ok=True)
    return out_path


def parity(model: torch.nn.Module, onnx_path: Path, feeds_list: list[dict[str, np.ndarray]]
           ) -> tuple[float, float]:
    """Run PyTorch and ONNX Runtime on the same feeds; return (max abs diff, worst PSNR in dB)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst_abs, worst_psnr = 0.0, float("inf")
    with torch.no_grad():
        for feeds in feeds_list:
            ref = model(*[torch.from_numpy(feeds[n]) for n in sorted(feeds, key=_input_order)]).numpy()
            got = sess.run(None, feeds)[0]
            if got.shape != ref.shape:
                raise ExportError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
            worst_abs = max(worst_abs, float(np.max(np.abs(got - ref))))
            worst_psnr = min(worst_psnr, psnr(got, ref))
    return worst_abs, worst_psnr


def _input_order(name: str) -> int:
    return {"image": 0, "ratio": 1}.get(name, 2)


def export_checkpoint(checkpoint: Path, out_dir: Path, parity_feeds: list[dict[str, np.ndarray]] | None = None,
                      *, max_abs: float = 1e-3) -> ExportInfo:
    """Checkpoint -> out_dir/model_fp32.onnx + export.json; raises ExportError when parity fails."""
    from export_tools.training.common import build_from_checkpoint

    model, ckpt = build_from_checkpoint(Path(checkpoint))
    return export_model(model, ckpt["arch"], out_dir, arch_kwargs=ckpt.get("arch_kwargs", {}),
                        meta=ckpt.get("meta", {}), checkpoint=str(checkpoint),
                        parity_feeds=parity_feeds, max_abs=max_abs)


def export_model(model: torch.nn.Module, arch: str, out_dir: Path, *, arch_kwargs: dict | None = None,
                 meta: dict | None = None, checkpoint: str | None = None,
                 parity_feeds: list[dict[str, np.ndarray]] | None = None, max_abs: float = 1e-3) -> ExportInfo:
    task = task_for_arch(arch)
    out_dir = Path(out_dir)
    onnx_path = export_module(model, task, out_dir / FP32_NAME)
    info = ExportInfo(task=task.task, arch=arch, arch_kwargs=dict(arch_kwargs or {}),
                      scale=model_scale(model, task), pad_multiple=model_pad_multiple(model),
                      checkpoint=checkpoint, meta=_jsonable(meta or {}))
    if parity_feeds:
        info.parity_max_abs, info.parity_psnr_db = parity(model, onnx_path, parity_feeds)
        if info.parity_max_abs > max_abs:
            raise ExportError(
                f"ONNX export of {arch} differs from PyTorch by {info.parity_max_abs:.2e} (> {max_abs:.0e}, "
                f"PSNR {info.parity_psnr_db:.1f} dB); the exported graph is not faithful"
            )
    info.save(out_dir)
    return info


def _jsonable(meta: dict) -> dict:
    return json.loads(json.dumps(meta, default=str))
