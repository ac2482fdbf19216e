"""Face super-resolution stage: pre/post-processing around the SRGAN-style generator.

upscale() takes a BGR uint8 image and returns it `scale` times larger (scale from the manifest).
Images larger than `tile` pixels on a side are processed in tiles of tile x tile input pixels
that overlap by `overlap` pixels on each side; only each tile's centre is kept, so seams do not
show for models whose receptive field is below the overlap. Inputs above MAX_INPUT_PIXELS
(4 megapixels, e.g. 2560x1600; the x4 output would be 64 megapixels) are refused with ValueError.
"""

from __future__ import annotations

import numpy as np

from edge_agent.enhance import tensors
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import LoadedModel

MAX_INPUT_PIXELS = 4_000_000
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 16


class FaceSuperResolver:
    def __init__(self, model: LoadedModel, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> None:
        entry = model.entry
        images = [s for s in entry.inputs if len(s.shape) == 4]
        if not images or not entry.outputs:
            raise ModelError(
                f"model {model.info.name} ({model.path}) has no 4-D image input or no output in its manifest entry"
            )
        if tile <= 2 * overlap:
            raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
        self.model = model
        self.image_input = images[0].name
        self.output = entry.outputs[0].name
        self.scale = entry.scale
        self.pad_multiple = entry.pad_multiple
        self.tile = tile
        self.overlap = overlap

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        x, size = tensors.pad_to_multiple(tensors.bgr_to_nchw(bgr), self.pad_multiple)
        y = self.model.runner.run({self.image_input: x})[self.output]
        want = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if tuple(y.shape[-2:]) != want:
            raise ModelError(
                f"model {self.model.info.name} ({self.model.path}) returned {tuple(y.shape)} for an input of "
                f"{tuple(x.shape)}; the manifest says scale {self.scale}"
            )
        return tensors.nchw_to_bgr(tensors.crop_to(y, size, self.scale))

    def upscale(self, bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 HxWx3 -> BGR uint8 (H*scale)x(W*scale)x3."""
        if bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {bgr.shape}")
        h, w = bgr.shape[:2]
        if h * w > MAX_INPUT_PIXELS:
            raise ValueError(
                f"image of {w}x{h} is too large to super-resolve (limit {MAX_INPUT_PIXELS} pixels); "
                "crop or downscale it first"
            )
        if h <= self.tile and w <= self.tile:
            return self._run(bgr)
        return self._tiled(bgr)

    def _tiled(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        s, t, o = self.scale, self.tile, self.overlap
        step = t - 2 * o
        out = np.empty((h * s, w * s, 3), dtype=np.uint8)
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                y1, x1 = min(y0 + step, h), min(x0 + step, w)  # the part this tile owns
                ty0, tx0 = max(y0 - o, 0), max(x0 - o, 0)  # the tile with its context
                ty1, tx1 = min(y1 + o, h), min(x1 + o, w)
                up = self._run(np.ascontiguousarray(bgr[ty0:ty1, tx0:tx1]))
                oy, ox = (y0 - ty0) * s, (x0 - tx0) * s
                out[y0 * s : y1 * s, x0 * s : x1 * s] = up[oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
        return out
