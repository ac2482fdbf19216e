"""Real-image inputs for calibration (training images) and validation (held-out images).

Calibration draws from the training photos; validation from images never used in training
(export_tools.data.images.held_out_images, plus the dev faces for SR). SR inputs are bicubic x4
low-res versions (export_tools.data.lowres.degrade); low-light inputs camera-true night frames
(export_tools.data.camera_night, Brooks et al. unprocessing: validation at camera_night.EVAL_SPEC,
calibration over the training range). Seeds and crops follow the trainers' own evaluate() so
verify's FP32 numbers are comparable with the training logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_agent.enhance.tensors import pad_to_multiple
from export_tools.export.metrics import bicubic, low_light_baselines, to_float

SEED = 1234
NIGHT_SEED = 10_000  # as export_tools.training.kind.evaluate
RatioFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass
class Sample:
    name: str
    group: str  # "photos" | "faces"
    feeds: dict[str, np.ndarray]  # padded, keyed by input name
    size: tuple[int, int]  # unpadded input H, W
    input_rgb: np.ndarray  # uint8 RGB, what the camera gave
    reference: np.ndarray  # float RGB [0, 1], the ground truth
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # float RGB [0, 1]
    condition: str = ""  # "" the task's main validation; "cctv": SR inputs degraded like a camera


def nchw(rgb_u8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(to_float(rgb_u8).transpose(2, 0, 1)[None])


def make_feeds(rgb_u8: np.ndarray, pad_multiple: int, ratio: float | None) -> tuple[dict, tuple[int, int]]:
    image, size = pad_to_multiple(nchw(rgb_u8), pad_multiple)
    feeds = {"image": np.ascontiguousarray(image)}
    if ratio is not None:
        feeds["ratio"] = np.full((1, 1), ratio, dtype=np.float32)
    return feeds, size


def center_crop(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return np.ascontiguousarray(img[y:y + max_side, x:x + max_side])


# ---------- low light ----------

def max_channel_ratio(night_u8: np.ndarray, reference_u8: np.ndarray) -> float:
    """Torch-free brightness ratio: mean Retinex illumination (max over RGB) of reference over night."""
    lo = float(night_u8.max(axis=2).mean()) / 255.0
    hi = float(reference_u8.max(axis=2).mean()) / 255.0
    return float(np.clip(hi / max(lo, 1e-4), 1.0, 50.0))


def kind_ratio_fn(checkpoint: str) -> RatioFn:
    """KinD's evaluation ratio (reference over night illumination from the model's own decomposition),
    exactly as export_tools.training.kind.evaluate computes it."""
    from export_tools.training.common import build_from_checkpoint
    from export_tools.training.kind import kind_ratio

    model, _ = build_from_checkpoint(checkpoint)
    return lambda low, high: float(kind_ratio(model, low, high))


def lowlight_validation(pad_multiple: int, ratio_fn: RatioFn = max_channel_ratio, seeds: int = 2
                        ) -> list[Sample]:
    from export_tools.data.camera_night import EVAL_SPEC, synth_camera_night
    from export_tools.data.images import held_out_images

    out = []
    for name, ref in held_out_images().items():
        for s in range(seeds):
            night, _ = synth_camera_night(ref, EVAL_SPEC, np.random.default_rng(NIGHT_SEED + s))
            feeds, size = make_feeds(night, pad_multiple, ratio_fn(night, ref))
            out.append(Sample(name=f"{name}#{s}", group="photos", feeds=feeds, size=size, input_rgb=night,
                              reference=to_float(ref), baselines=low_light_baselines(night, ref)))
    return out


def lowlight_calibration(pad_multiple: int, ratio_fn: RatioFn = max_channel_ratio, n: int = 24,
                         crop: int = 256, seed: int = SEED) -> list[dict]:
    from export_tools.data.camera_night import CameraNightSpec, synth_camera_night
    from export_tools.data.images import read_rgb, train_paths

    rng = np.random.default_rng(seed)
    paths = train_paths()
    feeds = []
    for _ in range(n):
        ref = _random_crop(read_rgb(paths[int(rng.integers(len(paths)))]), crop, rng)
        night, _ = synth_camera_night(ref, CameraNightSpec(), rng)
        feeds.append(make_feeds(night, pad_multiple, ratio_fn(night, ref))[0])
    return feeds


# ---------- super-resolution ----------

def _lr(hr_u8: np.ndarray, scale: int, rng: np.random.Generator, spec=None) -> tuple[np.ndarray, np.ndarray]:
    from export_tools.data.lowres import DegradeSpec, degrade, mod_crop

    hr = np.ascontiguousarray(mod_crop(hr_u8, scale))
    return degrade(hr, spec or DegradeSpec(scale=scale), rng), hr


def sr_validation(scale: int, pad_multiple: int = 1, seed: int = SEED, faces: bool = True,
                  max_side: int = 512, cctv: bool = True) -> list[Sample]:
    """Held-out photos + dev faces, centre-cropped to max_side: clean bicubic x`scale` down (seed +
    index), and with `cctv` the same images degraded by lowres.cctv_eval_spec (condition "cctv")."""
    from export_tools.data.images import DatasetMissing, held_out_faces, held_out_images, read_rgb
    from export_tools.data.lowres import cctv_eval_spec

    items = {name: ("photos", img) for name, img in held_out_images().items()}
    if faces:
        try:
            items.update({f"face/{p.stem}": ("faces", read_rgb(p)) for p in held_out_faces()})
        except DatasetMissing:
            pass
    conditions = {"": None, **({"cctv": cctv_eval_spec(scale)} if cctv else {})}
    out = []
    for condition, spec in conditions.items():
        for i, (name, (group, img)) in enumerate(sorted(items.items())):
            lr, hr = _lr(center_crop(img, max_side), scale, np.random.default_rng(seed + i), spec)
            feeds, size = make_feeds(lr, pad_multiple, None)
            out.append(Sample(name=f"{name}@{condition}" if condition else name, group=group, feeds=feeds,
                              size=size, input_rgb=lr, reference=to_float(hr),
                              baselines={"bicubic": bicubic(lr, scale)}, condition=condition))
    return out


def sr_calibration(scale: int, pad_multiple: int = 1, n: int = 32, lr_crop: int = 64, seed: int = SEED
                   ) -> list[dict]:
    """Low-res crops of the training photos, degraded like CCTV (area/bicubic, some noise/JPEG)."""
    from export_tools.data.images import read_rgb, train_paths
    from export_tools.data.lowres import DegradeSpec

    spec = DegradeSpec(scale=scale, downsample=["area", "bicubic"], noise_prob=0.3, noise_sigma=(1.0, 4.0),
                       jpeg_prob=0.3, jpeg_quality=(60, 95))
    rng = np.random.default_rng(seed)
    paths = train_paths()
    feeds = []
    for _ in range(n):
        hr = _random_crop(read_rgb(paths[int(rng.integers(len(paths)))]), lr_crop * scale, rng)
        lr, _ = _lr(hr, scale, rng, spec)
        feeds.append(make_feeds(lr, pad_multiple, None)[0])
    return feeds


def _random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size crop (small images are enlarged first, so every calibration input has one shape:
    ONNX Runtime's histogram calibrators need that)."""
    import cv2

    h, w = img.shape[:2]
    if min(h, w) < size:
        f = size / min(h, w)
        img = cv2.resize(img, (max(size, round(w * f)), max(size, round(h * f))), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def ratio_fn_for(arch: str, checkpoint: str | None) -> RatioFn:
    if arch == "kind_enhancer" and checkpoint:
        return kind_ratio_fn(checkpoint)
    return max_channel_ratio


def calibration(task: str, scale: int, pad_multiple: int, ratio_fn: RatioFn = max_channel_ratio) -> list[dict]:
    if task == "low_light":
        return lowlight_calibration(pad_multiple, ratio_fn)
    return sr_calibration(scale, pad_multiple)


def validation(task: str, scale: int, pad_multiple: int, ratio_fn: RatioFn = max_channel_ratio) -> list[Sample]:
    if task == "low_light":
        return lowlight_validation(pad_multiple, ratio_fn)
    return sr_validation(scale, pad_multiple)
