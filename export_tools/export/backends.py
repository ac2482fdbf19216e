"""Minimal runners used by verify and the benchmark: the same call for ONNX Runtime and OpenVINO.

`threads` pins the CPU threads (0 = runtime default). OpenVINO runs BF16 by default on CPUs that
support it; `precision="f32"` pins FP32 inference for accuracy checks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def ort_runner(path: Path, threads: int = 0) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return sess.run(None, feeds)[0]

    return run


def ov_runner(path: Path, threads: int = 0, precision: str | None = "f32") -> Runner:
    import openvino as ov

    core = ov.Core()
    config: dict = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    out = compiled.output(0)

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.array(request.infer(feeds)[out], copy=True)

    return run


def runner_for(path: Path, threads: int = 0, ov_precision: str | None = "f32") -> Runner:
    path = Path(path)
    if path.suffix == ".onnx":
        return ort_runner(path, threads)
    if path.suffix == ".xml":
        return ov_runner(path, threads, ov_precision)
    raise ValueError(f"no runner for {path} (expected .onnx or OpenVINO .xml)")
