"""ONNX Runtime (CPU) implementation of ModelRunner."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_agent.inference.base import ModelError, TensorSpec

log = logging.getLogger(__name__)

# ONNX type strings -> numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}


def _spec(arg) -> TensorSpec:
    return TensorSpec(name=arg.name, shape=tuple(arg.shape), dtype=_ORT_TYPES.get(arg.type, arg.type))


class OrtRunner:
    """One ONNX Runtime CPU session. `threads` = 0 keeps the runtime default (all cores)."""

    backend = "onnxruntime"

    def __init__(self, path: Path | str, threads: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} is missing")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no CPU memory arena: the agent feeds every model many input sizes (motion regions, tiles,
        # face crops); the arena keeps the largest of each and grows in powers of two, which cost
        # hundreds of MB per camera (benchmarks/capacity.py); plain allocations are returned
        opts.enable_cpu_mem_arena = False
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelError(f"model file {self.path} cannot be loaded by ONNX Runtime: {exc}") from exc
        self._inputs = [_spec(a) for a in self._session.get_inputs()]
        self._outputs = [_spec(a) for a in self._session.get_outputs()]
        log.debug("onnxruntime loaded %s (threads=%s)", self.path, threads or "default")

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._outputs]
        try:
            results = self._session.run(names, feeds)
        except Exception as exc:
            raise ModelError(f"model file {self.path} failed to run in ONNX Runtime: {exc}") from exc
        return dict(zip(names, results, strict=True))
