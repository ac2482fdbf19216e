"""OpenVINO (CPU) implementation of ModelRunner.

`precision_hint`: None leaves the CPU plugin its default (BF16 for the float parts on CPUs with
AVX512-BF16 or AMX, f32 elsewhere); "f32" pins full precision (accuracy checks, fp32 mode). Which
hint each model file gets is decided once, in `edge_agent.inference.loader.ov_options`.

`static_shapes`: 0 keeps the IR's dynamic shapes. N > 0 compiles the model once per input shape it
is fed (the N most recently used shapes are kept): with fixed shapes the CPU plugin picks blocked
memory layouts and drops the reorders a dynamic graph needs at run time (a 720p low-light frame:
62 -> 48 ms on 2 cores). Meant for models fed a few fixed sizes (a camera's frames, its tiles, the
auto-ratio probe), not for inputs of many sizes (face crops).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import openvino as ov

from edge_agent.inference.base import ModelError, TensorSpec

log = logging.getLogger(__name__)

_core: ov.Core | None = None
SHAPE_CACHE = 16  # input shapes whose compiled state the CPU plugin keeps
_core_lock = threading.Lock()

ShapeKey = tuple[tuple[str, tuple[int, ...]], ...]


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


class _Compiled:
    """One compiled model with its pool of idle infer requests (one per concurrent caller)."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.compiled = compiled
        self.ports = list(compiled.outputs)
        self.idle: queue.SimpleQueue = queue.SimpleQueue()

    def infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            request = self.idle.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            result = request.infer(feeds)
            # copy: the request's output buffers are reused by the next call
            return [np.array(result[port], copy=True) for port in self.ports]
        finally:
            self.idle.put(request)


class OpenVinoRunner:
    """One OpenVINO model on the CPU device. Thread-safe: each call borrows an idle infer request."""

    backend = "openvino"

    def __init__(self, xml_path: Path | str, threads: int = 0, precision_hint: str | None = None,
                 static_shapes: int = 0) -> None:
        self.path = Path(xml_path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} is missing")
        if static_shapes < 0:
            raise ValueError(f"static_shapes must be >= 0, got {static_shapes}")
        self._config: dict[str, str] = {}
        if threads > 0:
            self._config["INFERENCE_NUM_THREADS"] = str(threads)
        if precision_hint:
            self._config["INFERENCE_PRECISION_HINT"] = precision_hint
        self.precision_hint = precision_hint
        self.static_shapes = static_shapes
        try:
            core = _get_core()
            self._model = core.read_model(str(self.path))
            compiled = core.compile_model(self._model, "CPU", self._config)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise ModelError(f"model file {self.path} cannot be loaded by OpenVINO: {exc}") from exc
        self._inputs = [_spec(p) for p in compiled.inputs]
        self._outputs = [_spec(p) for p in compiled.outputs]
        # compiled once here so a file OpenVINO cannot run fails at load; kept only while shapes stay dynamic
        self._dynamic = _Compiled(compiled) if static_shapes == 0 else None
        self._static: OrderedDict[ShapeKey, _Compiled] = OrderedDict()
        self._static_lock = threading.Lock()
        log.debug("openvino loaded %s (threads=%s, precision=%s, static shapes=%s)", self.path,
                  threads or "default", precision_hint or "default", static_shapes or "no")

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    @property
    def compiled_shapes(self) -> list[ShapeKey]:
        """The input shapes compiled statically, least recently used first."""
        with self._static_lock:
            return list(self._static)

    def _for_shapes(self, feeds: dict[str, np.ndarray]) -> _Compiled:
        if self._dynamic is not None:
            return self._dynamic
        key: ShapeKey = tuple(sorted((name, tuple(np.shape(a))) for name, a in feeds.items()))
        with self._static_lock:
            hit = self._static.get(key)
            if hit is not None:
                self._static.move_to_end(key)
                return hit
            model = self._model.clone()
            try:
                model.reshape({name: ov.PartialShape(list(shape)) for name, shape in key})
                compiled = _Compiled(_get_core().compile_model(model, "CPU", self._config))
            except Exception as exc:
                raise ModelError(f"model file {self.path} cannot be compiled for input shapes "
                                 f"{dict(key)}: {exc}") from exc
            self._static[key] = compiled
            if len(self._static) > self.static_shapes:
                old, _ = self._static.popitem(last=False)
                log.info("openvino %s: released the compiled shape %s (keeps %d)", self.path.name,
                         dict(old), self.static_shapes)
            return compiled

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        known = {s.name for s in self._inputs}
        unknown = sorted(set(feeds) - known)
        if unknown:
            raise ModelError(f"model file {self.path} has no input(s) {unknown}; inputs are {sorted(known)}")
        compiled = self._for_shapes(feeds)
        try:
            outs = compiled.infer(feeds)
        except Exception as exc:
            raise ModelError(f"model file {self.path} failed to run in OpenVINO: {exc}") from exc
        return {spec.name: out for spec, out in zip(self._outputs, outs, strict=True)}
