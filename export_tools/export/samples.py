"""Real-image inputs for calibration (training images) and validation (held-out images).

Calibration draws from the training photos; validation from images never used in training
(export_tools.data.images.held_out_images, plus the dev faces for SR). Low-light inputs are
synthesized night versions (export_tools.data.lowlight), SR inputs low-res versions
(export_tools.data.lowres). Everything is seeded, so two runs see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_agent.enhance.tensors import pad_to_multiple
from export_tools.export.metrics import to_float

SEED = 1234


@dataclass
class Sample:
    name: str
    group: str  # "held_out" | "faces"
    feeds: dict[str, np.ndarray]  # padded, keyed by input name
    size: tuple[int, int]  # unpadded input H, W
    input_rgb: np.ndarray  # uint8 RGB, what the camera gave
    reference: np.ndarray  # float RGB [0, 1], the ground truth
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # float RGB [0, 1]


def nchw(rgb_u8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(to_float(rgb_u8).transpose(2, 0, 1)[None])


def make_feeds(rgb_u8: np.ndarray, pad_multiple: int, ratio: float | None) -> tuple[dict, tuple[int, int]]:
    image, size = pad_to_multiple(nchw(rgb_u8), pad_multiple)
    feeds = {"image": np.ascontiguousarray(image)}
    if ratio is not None:
        feeds["ratio"] = np.full((1, 1), ratio, dtype=np.float32)
    return feeds, size


# ---------- low light ----------

def _lowlight():
    try:
        from export_tools.data import lowlight
    except ImportError as exc:
        raise RuntimeError(f"night synthesis (export_tools.data.lowlight) is not available: {exc}") from exc
    return lowlight


def night_version(rgb_u8: np.ndarray, seed: int) -> np.ndarray:
    """A synthesized CCTV night frame (dark, noisy, colour cast, compressed) of a clean photo."""
    lowlight = _lowlight()
    return lowlight.synthesize_eval(rgb_u8, np.random.default_rng(seed))


def ratio_for(night_u8: np.ndarray, reference_u8: np.ndarray) -> float:
    """Brightness ratio the user would pick for this frame: the reference/night mean brightness."""
    lowlight = _lowlight()
    return float(lowlight.eval_ratio(night_u8, reference_u8))


def lowlight_validation(pad_multiple: int, seed: int = SEED) -> list[Sample]:
    from export_tools.data.images import held_out_images
    from export_tools.export.metrics import LOW_LIGHT_BASELINES

    out = []
    for i, (name, ref) in enumerate(held_out_images().items()):
        night = night_version(ref, seed + i)
        feeds, size = make_feeds(night, pad_multiple, ratio_for(night, ref))
        out.append(Sample(name=name, group="held_out", feeds=feeds, size=size, input_rgb=night,
                          reference=to_float(ref),
                          baselines={k: f(night) for k, f in LOW_LIGHT_BASELINES.items()}))
    return out


def lowlight_calibration(pad_multiple: int, n: int = 24, crop: int = 256, seed: int = SEED) -> list[dict]:
    from export_tools.data.images import read_rgb, train_paths

    rng = np.random.default_rng(seed)
    paths = train_paths()
    feeds = []
    for k in range(n):
        ref = read_rgb(paths[int(rng.integers(len(paths)))])
        ref = _random_crop(ref, crop, rng)
        night = night_version(ref, seed + 1000 + k)
        feeds.append(make_feeds(night, pad_multiple, ratio_for(night, ref))[0])
    return feeds


# ---------- super-resolution ----------

def _lr(hr_u8: np.ndarray, scale: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from export_tools.data.lowres import DegradeSpec, degrade, mod_crop

    hr = np.ascontiguousarray(mod_crop(hr_u8, scale))
    return degrade(hr, DegradeSpec(scale=scale, downsample=["bicubic"]), np.random.default_rng(seed)), hr


def sr_validation(scale: int, pad_multiple: int = 1, seed: int = SEED, faces: bool = True) -> list[Sample]:
    from export_tools.data.images import DatasetMissing, face_paths, held_out_images, read_rgb
    from export_tools.export.metrics import bicubic

    items = [(name, "held_out", img) for name, img in held_out_images().items()]
    if faces:
        try:
            items += [(p.stem, "faces", read_rgb(p)) for p in face_paths()]
        except DatasetMissing:
            pass
    out = []
    for i, (name, group, img) in enumerate(items):
        lr, hr = _lr(img, scale, seed + i)
        feeds, size = make_feeds(lr, pad_multiple, None)
        out.append(Sample(name=name, group=group, feeds=feeds, size=size, input_rgb=lr,
                          reference=to_float(hr), baselines={"bicubic": bicubic(lr, scale)}))
    return out


def sr_calibration(scale: int, pad_multiple: int = 1, n: int = 32, lr_crop: int = 64, seed: int = SEED
                   ) -> list[dict]:
    from export_tools.data.images import read_rgb, train_paths

    rng = np.random.default_rng(seed)
    paths = train_paths()
    feeds = []
    for k in range(n):
        hr = _random_crop(read_rgb(paths[int(rng.integers(len(paths)))]), lr_crop * scale, rng)
        lr, _ = _lr(hr, scale, seed + 1000 + k)
        feeds.append(make_feeds(lr, pad_multiple, None)[0])
    return feeds


def _random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def calibration(task: str, scale: int, pad_multiple: int) -> list[dict]:
    if task == "low_light":
        return lowlight_calibration(pad_multiple)
    return sr_calibration(scale, pad_multiple)


def validation(task: str, scale: int, pad_multiple: int) -> list[Sample]:
    if task == "low_light":
        return lowlight_validation(pad_multiple)
    return sr_validation(scale, pad_multiple)
