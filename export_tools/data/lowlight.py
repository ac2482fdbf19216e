"""Seeded, reproducible synthesis of night-time CCTV frames from well-lit photos (numpy + OpenCV).

The chain follows a camera: sRGB -> linear light, under-exposure (1-20% of the scene light),
a colour cast from street lighting, Poisson-Gaussian sensor noise in linear space (shot noise
proportional to the signal, read noise constant), the camera's tone curve (gamma), 8-bit
quantisation, then JPEG (cv2.imencode) or an H.264-like blocky codec (4:2:0 chroma, 8x8 DCT
with a flat quantiser). Every random draw comes from the numpy Generator passed in, so the same
seed gives the same frame, and the draws are returned in `meta`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class NightParams:
    """Ranges of the degradation; defaults model a CCTV camera at night."""

    exposure: tuple[float, float] = (0.01, 0.2)  # fraction of the scene light, log-uniform
    cast: float = 0.25  # per-channel gain spread (sodium/LED street light)
    shot: tuple[float, float] = (2e-4, 6e-3)  # shot-noise variance per unit linear signal, log-uniform
    read: tuple[float, float] = (1e-4, 2e-3)  # read-noise std in linear units, log-uniform
    camera_gamma: tuple[float, float] = (1.8, 2.6)  # camera tone curve: out = lin ** (1/g)
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 90)
    h264_prob: float = 0.4
    h264_qstep: tuple[float, float] = (4.0, 24.0)  # DCT quantiser step (8-bit units)


DEFAULT = NightParams()


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = getattr(rgb, "shape", type(rgb))
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {got} {getattr(rgb, 'dtype', '')}")


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def _dct_matrix(n: int = 8) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_D8 = _dct_matrix(8)


def _block_quantise(plane: np.ndarray, qstep: float) -> np.ndarray:
    """8x8 block DCT, flat quantiser (H.264 intra-like), inverse; plane float32 0..255."""
    h, w = plane.shape
    ph, pw = (-h) % 8, (-w) % 8
    p = np.pad(plane, ((0, ph), (0, pw)), mode="edge") - 128.0
    hb, wb = p.shape[0] // 8, p.shape[1] // 8
    blocks = p.reshape(hb, 8, wb, 8).transpose(0, 2, 1, 3)
    coef = _D8 @ blocks @ _D8.T
    # flat step, a little coarser for high frequencies (like the codec's deadzone at low bitrate)
    weight = 1.0 + 0.15 * (np.arange(8)[:, None] + np.arange(8)[None, :])
    q = qstep * weight
    coef = np.round(coef / q) * q
    out = (_D8.T @ coef @ _D8).transpose(0, 2, 1, 3).reshape(hb * 8, wb * 8) + 128.0
    return out[:h, :w]


def h264_like(rgb: np.ndarray, qstep: float) -> np.ndarray:
    """Blocky lossy codec: YCrCb 4:2:0, 8x8 DCT blocks with a flat quantiser, no deblocking."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    h, w = ycc.shape[:2]
    y = _block_quantise(ycc[..., 0], qstep)
    chroma = []
    for c in (1, 2):
        small = cv2.resize(ycc[..., c], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        small = _block_quantise(small, qstep * 1.5)
        chroma.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    out = np.stack([y, *chroma], axis=-1)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB))


def synth_night(rgb: np.ndarray, rng: np.random.Generator, params: NightParams = DEFAULT) -> tuple[np.ndarray, dict]:
    """Well-lit RGB uint8 -> (night RGB uint8 of the same shape, meta dict of the random draws)."""
    _check_rgb(rgb)
    p = params
    exposure = _loguniform(rng, *p.exposure)
    cast = np.exp(rng.uniform(-p.cast, p.cast, size=3))
    cast = cast / cast.mean()
    shot = _loguniform(rng, *p.shot)
    read = _loguniform(rng, *p.read)
    gamma = float(rng.uniform(*p.camera_gamma))
    lin = srgb_to_linear(rgb.astype(np.float32) / 255.0)
    sig = np.clip(lin * exposure * cast[None, None, :], 0.0, None)
    # Poisson-Gaussian: photon counts with gain `shot`, plus Gaussian read noise
    photons = rng.poisson(sig / shot).astype(np.float32)
    noisy = photons * shot + rng.normal(0.0, read, size=sig.shape).astype(np.float32)
    noisy = np.clip(noisy, 0.0, 1.0)
    out = np.clip(noisy ** (1.0 / gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    codec, quality = "none", 0.0
    u = rng.uniform()
    if u < p.jpeg_prob:
        codec, quality = "jpeg", float(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
        out = jpeg(out, int(quality))
    elif u < p.jpeg_prob + p.h264_prob:
        codec, quality = "h264", float(rng.uniform(*p.h264_qstep))
        out = h264_like(out, quality)
    meta = {"exposure": exposure, "cast": [float(c) for c in cast], "shot": shot, "read": read,
            "camera_gamma": gamma, "codec": codec, "quality": quality}
    return out, meta


class NightPatches:
    """Endless, seeded stream of (low, high) training batches cropped from well-lit images.

    batch(n) -> (low [n,3,p,p], high [n,3,p,p]) float32 RGB in [0, 1], NCHW. Each patch is cropped
    (with a random flip / 90-degree turn) from a random image, and degraded as a whole so the codec
    sees real block boundaries.
    """

    def __init__(self, images: list[np.ndarray], patch: int, seed: int, params: NightParams = DEFAULT,
                 synthesis: str = "classic") -> None:
        """synthesis: classic (synth_night, this module) or camera (export_tools.data.camera_night:
        Brooks et al. unprocessing, camera noise, imperfect white balance, IR mode, JPEG)."""
        if synthesis not in ("classic", "camera"):
            raise ValueError(f"unknown synthesis {synthesis!r}; use classic or camera")
        self.synthesis = synthesis
        if not images:
            raise ValueError("NightPatches needs at least one image")
        for img in images:
            _check_rgb(img)
            if min(img.shape[:2]) < patch:
                raise ValueError(f"image {img.shape[:2]} smaller than patch size {patch}")
        self.images = images
        self.patch = patch
        self.params = params
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        y, x = int(rng.integers(h - self.patch + 1)), int(rng.integers(w - self.patch + 1))
        crop = img[y:y + self.patch, x:x + self.patch]
        crop = np.rot90(crop, int(rng.integers(4)))
        if rng.uniform() < 0.5:
            crop = crop[:, ::-1]
        crop = np.ascontiguousarray(crop)
        if self.synthesis == "camera":
            from export_tools.data.camera_night import CameraNightSpec, synth_camera_night

            low, _ = synth_camera_night(crop, CameraNightSpec(), rng)
        else:
            low, _ = synth_night(crop, rng, self.params)
        return low, crop

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.sample() for _ in range(n)]
        low = np.stack([p[0] for p in pairs]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        high = np.stack([p[1] for p in pairs]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return np.ascontiguousarray(low), np.ascontiguousarray(high)


def params_dict(params: NightParams = DEFAULT) -> dict:
    return asdict(params)
