"""Seeded low-resolution degradation as CCTV produces it, and the SR training patch sampler (numpy + cv2).

degrade(hr, spec, rng): optional Gaussian blur (optics, defocus) -> area or bicubic downsampling by the
scale -> optional Gaussian sensor noise -> optional JPEG compression (the encoder). Every random choice
comes from the numpy Generator passed in, so the same seed gives the same low-resolution image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from export_tools.data.camera_night import jpeg


class DegradeSpec(BaseModel):
    """How a high-resolution image becomes the low-resolution input. Ranges are sampled per image."""

    model_config = ConfigDict(extra="forbid")

    scale: Literal[2, 3, 4] = 4
    downsample: list[Literal["area", "bicubic"]] = Field(default_factory=lambda: ["bicubic"], min_length=1)
    blur_prob: float = Field(0.0, ge=0.0, le=1.0)
    blur_sigma: tuple[float, float] = (0.2, 1.2)  # in high-resolution pixels
    noise_prob: float = Field(0.0, ge=0.0, le=1.0)
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # in 0..255 units
    jpeg_prob: float = Field(0.0, ge=0.0, le=1.0)
    jpeg_quality: tuple[int, int] = (40, 95)
    # night face crops as the agent hands them to SR (night_crop): this share of the patches
    night_prob: float = Field(0.0, ge=0.0, le=1.0)
    night_exposure: tuple[float, float] = (0.08, 0.3)  # brightness of the night scene, x the photo's
    night_noise: tuple[float, float] = (0.5, 2.5)  # sensor noise in the dark frame, grey levels
    # the night stream's codec: this share of the night crops is JPEG-coded (8x8 blocks, 4:2:0 chroma,
    # block grid at a random offset) while still dark, so the agent's lift amplifies the blocking and
    # the chroma blotches as it does for a crop cut from a dark H.264 frame
    night_codec_prob: float = Field(0.0, ge=0.0, le=1.0)
    night_codec_quality: tuple[int, int] = (60, 90)  # mild: H.264 deblocks, so no hard 8 px grid

    @model_validator(mode="after")
    def _ranges(self) -> DegradeSpec:
        for name in ("blur_sigma", "noise_sigma", "jpeg_quality", "night_exposure", "night_noise",
                     "night_codec_quality"):
            lo, hi = getattr(self, name)
            if lo < 0 or hi < lo:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high, got {(lo, hi)}")
        if not 0 < self.night_exposure[0] <= self.night_exposure[1] <= 1:
            raise ValueError(f"night_exposure must lie in (0, 1], got {self.night_exposure}")
        for name in ("jpeg_quality", "night_codec_quality"):
            lo, hi = getattr(self, name)
            if hi > 100 or lo < 1:
                raise ValueError(f"{name} must lie in 1..100, got {(lo, hi)}")
        return self


def cctv_eval_spec(scale: int = 4) -> DegradeSpec:
    """The held-out "CCTV" evaluation every SR model card reports beside clean bicubic x`scale`:
    area or bicubic scaling, and each of optics blur (sigma 0.2-0.8 HR px), sensor noise (sigma 1-4)
    and JPEG (quality 60-90) on half of the images, seeded per image. One definition, used by the
    training's final report, the model cards and the benchmarks."""
    return DegradeSpec(scale=scale, downsample=["area", "bicubic"], blur_prob=0.5, blur_sigma=(0.2, 0.8),
                       noise_prob=0.5, noise_sigma=(1.0, 4.0), jpeg_prob=0.5, jpeg_quality=(60, 90))


def _check_hr(hr: np.ndarray, scale: int) -> None:
    if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {hr.dtype} {hr.shape}")
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f"image size {hr.shape[:2]} is not a multiple of the scale {scale}; use mod_crop first")


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so height and width are multiples of scale."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                    np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downsampling by an integer factor, as MATLAB imresize and PIL do it
    (the cubic kernel stretched by the factor). cv2.INTER_CUBIC does not antialias when shrinking,
    which aliases fine detail and is not how a camera's optics and scaler behave.
    HxWxC float32 -> (H/s)x(W/s)xC float32."""
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image size {(h, w)} is not a multiple of the scale {scale}")
    centre = (scale - 1) / 2.0
    taps = np.arange(int(np.ceil(centre - 2 * scale)), int(np.floor(centre + 2 * scale)) + 1)
    weights = _cubic((taps - centre) / scale)
    weights = (weights / weights.sum()).astype(np.float32)
    # correlate with the taps (anchor at tap 0), then keep every scale-th sample
    kernel = weights.reshape(-1, 1)
    anchor = int(np.where(taps == 0)[0][0])
    out = cv2.sepFilter2D(img, cv2.CV_32F, kernel, kernel, anchor=(anchor, anchor),
                          borderType=cv2.BORDER_REFLECT)
    out = out[::scale, ::scale]
    return np.ascontiguousarray(out)


def degrade(hr: np.ndarray, spec: DegradeSpec, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 HxWx3 (multiple of spec.scale) -> RGB uint8 (H/s)x(W/s)x3."""
    _check_hr(hr, spec.scale)
    s = spec.scale
    img = hr
    if spec.blur_prob > 0 and rng.random() < spec.blur_prob:
        sigma = float(rng.uniform(*spec.blur_sigma))
        if sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    mode = spec.downsample[int(rng.integers(len(spec.downsample)))]
    if mode == "area":
        lr = cv2.resize(img.astype(np.float32), (hr.shape[1] // s, hr.shape[0] // s), interpolation=cv2.INTER_AREA)
    else:
        lr = bicubic_downscale(img.astype(np.float32), s)
    if spec.noise_prob > 0 and rng.random() < spec.noise_prob:
        sigma = float(rng.uniform(*spec.noise_sigma))
        lr = lr + rng.normal(0.0, sigma, lr.shape).astype(np.float32)
    lr = np.clip(np.rint(lr), 0, 255).astype(np.uint8)
    if spec.jpeg_prob > 0 and rng.random() < spec.jpeg_prob:
        lr = jpeg(lr, int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1)))
    return lr


def coded_at_offset(rgb: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip of a crop whose block grid starts at a random offset (0-15 px), as a crop cut
    anywhere from a coded frame has it: the crop is edge-padded at the top left before coding."""
    dy, dx = (int(v) for v in rng.integers(0, 16, 2))
    padded = np.pad(rgb, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(jpeg(padded, quality)[dy:, dx:])


def night_crop(lr: np.ndarray, hr: np.ndarray, spec: DegradeSpec, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 RGB -> the pair as a night face crop reaches SR in the agent: the LR darkened
    to a random exposure with sensor noise and 8-bit quantisation, optionally coded while dark
    (night_codec_prob), lifted to mid-grey by the agent's
    own gamma (edge_agent.enhance.faces.brighten_to_mid) and denoised by its crop denoiser; the HR
    target is the clean photo at the same exposure through the same gamma."""
    from edge_agent.enhance.crop_denoise import denoise_crop
    from edge_agent.enhance.faces import lift_gamma

    exposure = float(rng.uniform(*spec.night_exposure))
    sigma = float(rng.uniform(*spec.night_noise))
    dark = lr.astype(np.float32) * exposure + rng.normal(0.0, sigma, lr.shape).astype(np.float32)
    dark_u8 = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    if spec.night_codec_prob > 0 and rng.random() < spec.night_codec_prob:
        q = spec.night_codec_quality
        dark_u8 = coded_at_offset(dark_u8, int(rng.integers(q[0], q[1] + 1)), rng)
    g = lift_gamma(dark_u8)
    if g is None:  # a very bright photo stays bright enough: nothing to lift
        return dark_u8, np.clip(np.rint(hr.astype(np.float32) * exposure), 0, 255).astype(np.uint8)

    def lift(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.clip(x / 255.0, 0.0, 1.0) ** g * 255.0), 0, 255).astype(np.uint8)

    lifted = denoise_crop(lift(dark_u8.astype(np.float32)), order="rgb")
    return lifted, lift(hr.astype(np.float32) * exposure)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every SR model must beat: RGB uint8 -> RGB uint8 scaled by `scale` (bicubic)."""
    return cv2.resize(lr, (lr.shape[1] * scale, lr.shape[0] * scale), interpolation=cv2.INTER_CUBIC)


class PatchSampler:
    """Random (LR, HR) training patch batches from in-memory RGB uint8 images.

    Each batch: random image, random crop of hr_patch pixels, random flip/transpose, then degrade().
    Returns float32 NCHW arrays in [0, 1]: lr [B,3,p/s,p/s], hr [B,3,p,p]. Reproducible from the seed;
    `state()`/`set_state()` carry the generator through a checkpoint for exact resume.
    """

    def __init__(self, images: Sequence[np.ndarray], spec: DegradeSpec, hr_patch: int, seed: int):
        if hr_patch % spec.scale:
            raise ValueError(f"hr_patch {hr_patch} must be a multiple of the scale {spec.scale}")
        usable = [im for im in images if im.shape[0] >= hr_patch and im.shape[1] >= hr_patch]
        if not usable:
            raise ValueError(f"no training image is at least {hr_patch}x{hr_patch} pixels")
        self.images = usable
        self.spec = spec
        self.hr_patch = hr_patch
        self.rng = np.random.default_rng(seed)
        # sample images in proportion to their area so large photos are not under-used
        areas = np.array([im.shape[0] * im.shape[1] for im in usable], dtype=np.float64)
        self._p = areas / areas.sum()

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.hr_patch
        im = self.images[int(self.rng.choice(len(self.images), p=self._p))]
        y = int(self.rng.integers(0, im.shape[0] - p + 1))
        x = int(self.rng.integers(0, im.shape[1] - p + 1))
        hr = im[y : y + p, x : x + p]
        if self.rng.random() < 0.5:
            hr = hr[:, ::-1]
        if self.rng.random() < 0.5:
            hr = hr[::-1]
        if self.rng.random() < 0.5:
            hr = hr.transpose(1, 0, 2)
        hr = np.ascontiguousarray(hr)
        lr = degrade(hr, self.spec, self.rng)
        if self.spec.night_prob > 0 and self.rng.random() < self.spec.night_prob:
            return night_crop(lr, hr, self.spec, self.rng)
        return lr, hr

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.sample() for _ in range(size)]
        lr = np.stack([a for a, _ in pairs]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        hr = np.stack([b for _, b in pairs]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return np.ascontiguousarray(lr), np.ascontiguousarray(hr)
