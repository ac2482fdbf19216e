"""The steps on a work folder, in order: export -> quantize -> verify. Each step reads what the
previous one wrote (export.json, model files), so the CLI can run them one at a time or all at once."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from export_tools.export import openvino, quantize, samples
from export_tools.export.onnx import FP32_NAME, ExportInfo, export_checkpoint
from export_tools.export.verify import Report, verify


def export_step(checkpoint: Path, work_dir: Path, n_parity: int = 2) -> ExportInfo:
    """Checkpoint -> model_fp32.onnx, parity-checked on real validation inputs."""
    from export_tools.export.tasks import task_for_arch
    from export_tools.training.common import load_checkpoint

    try:
        ckpt = load_checkpoint(Path(checkpoint))
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:  # unpickling errors of a file that is not a torch checkpoint
        raise ValueError(f"{checkpoint} is not a readable PyTorch checkpoint: {exc}") from exc
    task = task_for_arch(ckpt["arch"])
    pad = _pad_multiple(ckpt)
    scale = int(ckpt.get("arch_kwargs", {}).get("scale", 4 if task.task == "face_sr" else 1))
    ratio_fn = samples.ratio_fn_for(ckpt["arch"], str(checkpoint))
    vals = samples.validation(task.task, scale, pad, ratio_fn)[:n_parity]
    return export_checkpoint(Path(checkpoint), Path(work_dir), parity_feeds=[s.feeds for s in vals])


def _pad_multiple(ckpt: dict) -> int:
    from export_tools.archs.registry import build

    return int(getattr(build(ckpt["arch"], **ckpt.get("arch_kwargs", {})), "pad_multiple", 1))


def _arch_attr(arch: str, name: str, default):
    """An INT8 setting the architecture's class declares (keep_float, int8_fast_bias_correction)."""
    from export_tools.archs.registry import arch_class

    try:
        return getattr(arch_class(arch), name, default)
    except KeyError:
        return default


def _keep_float(arch: str) -> tuple[str, ...]:
    """Node-name prefixes the architecture asks INT8 to leave in float (its `keep_float`)."""
    return tuple(_arch_attr(arch, "keep_float", ()))


def quantize_step(work_dir: Path, *, calibration: str = "minmax", max_int8_kernel: int = 7,
                  ov_preset: str = "mixed", ov_ranges: str = "minmax", float_tail: bool = False,
                  calib_feeds: list[dict] | None = None) -> dict[str, Path]:
    """model_fp32.onnx -> model_int8.onnx (ORT QDQ), openvino_fp16.xml, openvino_int8.xml (NNCF)."""
    work_dir = Path(work_dir)
    info = ExportInfo.load(work_dir)
    fp32 = work_dir / FP32_NAME
    if calib_feeds is None:
        calib_feeds = samples.calibration(info.task, info.scale, info.pad_multiple,
                                          samples.ratio_fn_for(info.arch, info.checkpoint))
    keep_float = _keep_float(info.arch)
    keep_float_ort = keep_float + tuple(_arch_attr(info.arch, "keep_float_onnxruntime", ()))
    steps = tqdm(total=3, desc="quantize", unit="step")
    out = {"onnx_int8": quantize.quantize_onnx_int8(fp32, work_dir / quantize.INT8_NAME, calib_feeds,
                                                    calibration=calibration, max_int8_kernel=max_int8_kernel,
                                                    exclude_prefixes=keep_float_ort, float_tail=float_tail)}
    steps.update()
    out["openvino_fp16"] = openvino.convert_fp16(fp32, work_dir / openvino.FP16_NAME)
    steps.update()
    out["openvino_int8"] = openvino.quantize_int8(fp32, work_dir / openvino.INT8_NAME, calib_feeds,
                                                  preset=ov_preset, ranges=ov_ranges,
                                                  ignored_prefixes=keep_float,
                                                  fast_bias_correction=bool(_arch_attr(
                                                      info.arch, "int8_fast_bias_correction", True)))
    steps.update()
    steps.close()
    return out


def build_all(checkpoint: Path, work_dir: Path, *, max_drop_db: float | None = None,
              threads: int = 2) -> Report:
    export_step(checkpoint, work_dir)
    quantize_step(work_dir)
    return verify(work_dir, max_drop_db=max_drop_db, threads=threads)
