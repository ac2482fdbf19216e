"""OpenVINO (CPU) implementation of ModelRunner.

Dynamic shapes are kept as the IR declares them. On CPUs with BF16 support OpenVINO computes in
BF16 by default; pass precision_hint="f32" for full-precision results (accuracy checks, fp32 mode).
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np
import openvino as ov

from edge_agent.inference.base import ModelError, TensorSpec

log = logging.getLogger(__name__)

_core: ov.Core | None = None
SHAPE_CACHE = 16  # input shapes whose compiled state the CPU plugin keeps
_core_lock = threading.Lock()


def _get_core() -> ov.Core:
    global _core
    with _core_lock:
        if _core is None:
            _core = ov.Core()
            # compiled state kept per input shape (default 5000 shapes): a model fed many sizes
            # grows without bound; a camera's frames have one size, so a few are plenty
            _core.set_property("CPU", {"CPU_RUNTIME_CACHE_CAPACITY": str(SHAPE_CACHE)})
        return _core


def _shape(pshape: ov.PartialShape) -> tuple:
    return tuple(d.get_length() if d.is_static else None for d in pshape)


def _spec(port) -> TensorSpec:
    return TensorSpec(name=port.get_any_name(), shape=_shape(port.get_partial_shape()),
                      dtype=port.get_element_type().to_dtype().name)


class OpenVinoRunner:
    """One compiled OpenVINO model on the CPU device. Thread-safe: each call borrows an idle infer
    request from a small pool (one per concurrent caller)."""

    backend = "openvino"

    def __init__(self, xml_path: Path | str, threads: int = 0, precision_hint: str | None = None) -> None:
        self.path = Path(xml_path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} is missing")
        config: dict[str, str] = {}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        try:
            core = _get_core()
            model = core.read_model(str(self.path))
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise ModelError(f"model file {self.path} cannot be loaded by OpenVINO: {exc}") from exc
        self._inputs = [_spec(p) for p in self._compiled.inputs]
        self._outputs = [_spec(p) for p in self._compiled.outputs]
        self._ports = list(self._compiled.outputs)
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        log.debug("openvino loaded %s (threads=%s, precision=%s)", self.path, threads or "default",
                  precision_hint or "default")

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        known = {s.name for s in self._inputs}
        unknown = sorted(set(feeds) - known)
        if unknown:
            raise ModelError(f"model file {self.path} has no input(s) {unknown}; inputs are {sorted(known)}")
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            result = request.infer(feeds)
            # copy: the request's output buffers are reused by the next call
            return {spec.name: np.array(result[port], copy=True)
                    for spec, port in zip(self._outputs, self._ports, strict=True)}
        except Exception as exc:
            raise ModelError(f"model file {self.path} failed to run in OpenVINO: {exc}") from exc
        finally:
            self._idle.put(request)
