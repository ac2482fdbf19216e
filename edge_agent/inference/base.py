"""The narrow runner interface between the agent and a model backend.

Only modules in edge_agent/inference import onnxruntime or openvino.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or None / str for dynamic dimensions
    dtype: str  # numpy dtype name, e.g. "float32"


class ModelRunner(Protocol):
    backend: str  # "onnxruntime" | "openvino"

    @property
    def inputs(self) -> list[TensorSpec]: ...

    @property
    def outputs(self) -> list[TensorSpec]: ...

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; feeds and results are keyed by tensor name."""
        ...


class ModelError(Exception):
    """A model could not be found, verified, loaded or run. The message names the file."""
