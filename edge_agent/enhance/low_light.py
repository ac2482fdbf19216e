"""Low-light enhancement stage: pre/post-processing around the KinD-style model.

The model's I/O comes from its manifest entry: the image is the first 4-D input, the brightness
ratio the 2-D ([1, 1]) input (optional; a model without one ignores `ratio`), the result the first
output. Inputs are padded to the
entry's pad_multiple and the output is cropped back, so any frame size works.
"""

from __future__ import annotations

import numpy as np

from edge_agent.enhance import tensors
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import LoadedModel


def is_dark(bgr: np.ndarray, luma_threshold: float) -> bool:
    """True when the mean luma (0..255) of the frame is below the threshold."""
    return tensors.luma(bgr) < luma_threshold


class LowLightEnhancer:
    def __init__(self, model: LoadedModel) -> None:
        entry = model.entry
        self.model = model
        images = [s for s in entry.inputs if len(s.shape) == 4]
        # the brightness ratio: the 2-D ([1, 1]) input, else any other non-image input
        others = [s for s in entry.inputs if len(s.shape) != 4]
        ratios = [s for s in others if len(s.shape) == 2] or others
        if not images or not entry.outputs:
            raise ModelError(
                f"model {model.info.name} ({model.path}) has no 4-D image input or no output in its manifest entry"
            )
        self.image_input = images[0].name
        self.ratio_input = ratios[0].name if ratios else None
        self.ratio_shape = tuple(d if isinstance(d, int) else 1 for d in ratios[0].shape) if ratios else ()
        self.output = entry.outputs[0].name
        self.pad_multiple = entry.pad_multiple

    def enhance(self, bgr: np.ndarray, ratio: float) -> np.ndarray:
        """Brighten a BGR uint8 HxWx3 frame; returns BGR uint8 of the same size."""
        x, size = tensors.pad_to_multiple(tensors.bgr_to_nchw(bgr), self.pad_multiple)
        feeds = {self.image_input: x}
        if self.ratio_input is not None:
            feeds[self.ratio_input] = np.full(self.ratio_shape, ratio, dtype=np.float32)
        y = self.model.runner.run(feeds)[self.output]
        if y.shape[-2:] != x.shape[-2:]:
            raise ModelError(
                f"model {self.model.info.name} ({self.model.path}) returned {tuple(y.shape)} "
                f"for an input of {tuple(x.shape)}"
            )
        return tensors.nchw_to_bgr(tensors.crop_to(y, size))
