"""Minimal runners used by verify and the benchmark: the same call for ONNX Runtime and OpenVINO.

`threads` pins the CPU threads (0 = runtime default). OpenVINO runs BF16 by default on CPUs that
support it; `precision="f32"` pins FP32 inference for accuracy checks; `runner_for(..., task=...)`
runs an IR with the options the agent uses for it.
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


def ov_runner(path: Path, threads: int = 0, precision: str | None = "f32", static_shapes: int = 0) -> Runner:
    """The agent's own OpenVINO runner (edge_agent.inference.openvino_runner), first output only."""
    from edge_agent.inference.openvino_runner import OpenVinoRunner

    runner = OpenVinoRunner(path, threads=threads, precision_hint=precision, static_shapes=static_shapes)

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return next(iter(runner.run(feeds).values()))

    return run


def runner_for(path: Path, threads: int = 0, *, task: str | None = None, kind: str | None = None) -> Runner:
    """A runner for an exported file. Given the model's `task` and the file's artifact `kind`
    (openvino_int8, openvino_fp16), an OpenVINO IR runs as the agent runs it
    (edge_agent.inference.loader.ov_options: precision hint, static shapes); otherwise in f32."""
    path = Path(path)
    if path.suffix == ".onnx":
        return ort_runner(path, threads)
    if path.suffix == ".xml":
        if task is None or kind is None:
            return ov_runner(path, threads)
        from edge_agent.inference.loader import ov_options

        opts = ov_options(task, kind)
        return ov_runner(path, threads, opts["precision_hint"], opts["static_shapes"])
    raise ValueError(f"no runner for {path} (expected .onnx or OpenVINO .xml)")
