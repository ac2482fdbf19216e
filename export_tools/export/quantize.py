"""ONNX Runtime static INT8 (QDQ, U8S8) with calibration on real images.

U8S8 = unsigned activations (QUInt8) with signed per-channel weights (QInt8): with signed activations
ONNX Runtime leaves residual Adds and many convs in float and runs slower than FP32. Large-kernel
convs (e.g. 9x9) stay float: their INT8 kernels made ORT's peak memory jump to several GB here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from export_tools.export.onnx import IR_VERSION

INT8_NAME = "model_int8.onnx"
CALIBRATION = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}


class QuantizeError(RuntimeError):
    pass


class _FeedReader(CalibrationDataReader):
    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def large_kernel_convs(model: onnx.ModelProto, max_kernel: int) -> list[str]:
    """Names of Conv/ConvTranspose nodes whose kernel is larger than max_kernel in either dimension."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
        if kernel is None and len(node.input) > 1 and node.input[1] in shapes:
            kernel = list(shapes[node.input[1]][2:])
        if kernel and max(kernel) > max_kernel:
            names.append(node.name)
    return names


def output_tail(model: onnx.ModelProto) -> list[str]:
    """Nodes from the graph outputs back to (and including) the last conv on each path: the
    full-resolution output stage, where 8-bit activations cost the most PSNR."""
    producers = {out: n for n in model.graph.node for out in n.output}
    names, seen, stack = [], set(), [o.name for o in model.graph.output]
    while stack:
        node = producers.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        names.append(node.name)
        if node.op_type not in ("Conv", "ConvTranspose"):
            stack.extend(node.input)
    return names


def _name_nodes(model: onnx.ModelProto) -> None:
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


def quantize_onnx_int8(fp32_path: Path, out_path: Path, calib_feeds: list[dict[str, np.ndarray]], *,
                       max_int8_kernel: int = 7, per_channel: bool = True, calibration: str = "minmax",
                       exclude: Iterable[str] = (), exclude_prefixes: Iterable[str] = (),
                       float_tail: bool = False) -> Path:
    """Write a static INT8 QDQ model calibrated on `calib_feeds`; returns out_path."""
    if not calib_feeds:
        raise QuantizeError("no calibration images: INT8 calibration needs real inputs")
    if calibration not in CALIBRATION:
        raise QuantizeError(f"unknown calibration {calibration!r}; choose one of {', '.join(CALIBRATION)}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nw-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # a graph the optimizer cannot handle still quantizes unoptimized
            raise QuantizeError(f"ONNX Runtime pre-processing of {fp32_path} failed: {exc}") from exc
        model = onnx.load(str(pre))
        _name_nodes(model)
        onnx.save(model, str(pre))
        prefixes = tuple(exclude_prefixes)
        keep_float = set(large_kernel_convs(model, max_int8_kernel)) | set(exclude)
        if prefixes:
            keep_float |= {n.name for n in model.graph.node if n.name.startswith(prefixes)}
        if float_tail:
            keep_float |= set(output_tail(model))
        keep_float = sorted(keep_float)
        quantize_static(
            str(pre), str(out_path), _FeedReader(calib_feeds),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=keep_float or None,
            calibrate_method=CALIBRATION[calibration],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    model = onnx.load(str(out_path))
    if model.ir_version > IR_VERSION:
        model.ir_version = IR_VERSION
        onnx.save(model, str(out_path))
    return out_path


def int8_summary(path: Path) -> dict[str, int]:
    """Count quantized vs float compute nodes (for the card and to catch a model that stayed float)."""
    model = onnx.load(str(path))
    produced_by_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    counts = {"int8_convs": 0, "float_convs": 0, "quantize_nodes": 0}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            counts["quantize_nodes"] += 1
        if node.op_type in ("Conv", "ConvTranspose"):
            quantized = len(node.input) > 1 and node.input[1] in produced_by_dq
            counts["int8_convs" if quantized else "float_convs"] += 1
    return counts
