"""Night as a camera makes it, after Brooks et al. 2019 ("Unprocessing images for learned raw denoising").

render(rgb, params, rng): a well-exposed sRGB picture -> what a camera gives at night:
1. unprocess: inverse tone curve (smoothstep), inverse gamma (sRGB -> linear), inverse colour
   matrix and inverse white-balance gains -> a linear raw-like picture;
2. exposure cut to params.exposure (1-15 % of normal);
3. sensor noise: shot noise (variance proportional to the signal, params.shot_noise) and read noise
   (constant variance, params.read_noise), heteroscedastic as in the paper;
   The exposure cut comes first, then the camera's gain (AGC: up to params.max_gain, towards a mean
   linear level params.agc_target; a CCTV camera at night turns its gain up rather than give a
   black picture), then the noise, at the gained level as Brooks et al. measure it on real raws;
4. re-process with the camera's own white balance and colour matrix (randomised: the colour casts
   real cameras give at night), gamma and tone curve;
5. IR mode: the three channels equal (an IR-lit monochrome picture);
6. optional JPEG at params.jpeg_quality (video clips leave this to the H.264 encoder).
numpy + OpenCV only (the agent's demo uses it; no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# sRGB -> XYZ and a few camera -> XYZ matrices (Brooks et al. use a set measured from real cameras;
# these are typical values of that kind), mixed at random per clip
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]], np.float32)
_XYZ2CAMS = [
    np.array([[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]], np.float32),
    np.array([[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]], np.float32),
    np.array([[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]], np.float32),
    np.array([[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]], np.float32),
]


@dataclass(frozen=True)
class CameraParams:
    exposure: float  # fraction of a normal exposure
    shot_noise: float  # shot noise variance per unit linear signal
    read_noise: float  # read noise variance
    wb_gains: tuple[float, float, float]  # the camera's white-balance gains (r, g, b)
    ccm: np.ndarray  # 3x3 camera -> linear sRGB
    ir: bool = False
    jpeg_quality: int | None = None
    gain: float | None = None  # the camera's gain; None: automatic (agc_gain of the picture)
    max_gain: float = 16.0  # AGC limit (24 dB): darker scenes than that stay dark
    agc_target: float = 0.03  # AGC aims the mean linear level here (about luma 25 after the tone curve)


def _ccm(rng: np.random.Generator) -> np.ndarray:
    w = rng.uniform(1e-8, 1.0, len(_XYZ2CAMS)).astype(np.float32)
    xyz2cam = sum(wi * m for wi, m in zip(w / w.sum(), _XYZ2CAMS, strict=True))
    rgb2cam = xyz2cam @ _RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(axis=1, keepdims=True)
    return np.linalg.inv(rgb2cam).astype(np.float32)  # cam -> rgb


def sample_params(rng: np.random.Generator, *, exposure=(0.01, 0.15), ir_prob: float = 0.0,
                  jpeg_quality=(30, 90), noise_scale: float = 1.0) -> CameraParams:
    """Random camera parameters in the ranges of Brooks et al. (log-uniform shot noise, read noise
    tied to it), a log-uniform exposure in the given range, white balance of night lighting."""
    lo, hi = exposure
    exp = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    log_shot = rng.uniform(np.log(1e-4), np.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    # sodium/tungsten street light to moonlight: the camera's gains do not match the light
    wb = (float(rng.uniform(1.6, 2.4)), 1.0, float(rng.uniform(1.3, 1.9)))
    q = None if jpeg_quality is None else int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    return CameraParams(exposure=exp, shot_noise=float(np.exp(log_shot)) * noise_scale,
                        read_noise=float(np.exp(log_read)) * noise_scale ** 2, wb_gains=wb, ccm=_ccm(rng),
                        ir=bool(rng.random() < ir_prob), jpeg_quality=q)


def _inv_smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 3.0 * x * x - 2.0 * x * x * x


def _dark_linear(rgb: np.ndarray, params: CameraParams) -> np.ndarray:
    lin = np.maximum(_inv_smoothstep(rgb.astype(np.float32)), 1e-8) ** 2.2
    cam = lin @ np.linalg.inv(params.ccm).T.astype(np.float32)
    # the scene light is "white" for the photo; the camera's gains are for another light: the
    # raw picture divided by the true gains keeps the cast the camera's gains then give
    return np.clip(cam, 0.0, 1.0) / np.asarray(params.wb_gains, np.float32) * np.float32(params.exposure)


def agc_gain(rgb: np.ndarray, params: CameraParams) -> float:
    """The gain the camera's AGC settles on for this well-exposed picture at params.exposure
    (1 .. params.max_gain). Clips fix it once from the empty scene, as a settled AGC holds it."""
    small = cv2.resize(rgb.astype(np.float32), None, fx=0.125, fy=0.125, interpolation=cv2.INTER_AREA) \
        if min(rgb.shape[:2]) >= 64 else rgb
    mean = float(_dark_linear(small, params).mean())
    return float(np.clip(params.agc_target / max(mean, 1e-8), 1.0, params.max_gain))


def night_linear(rgb: np.ndarray, params: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Well-exposed sRGB float [0, 1] -> the noisy, dark, gained linear raw-like picture (camera space)."""
    gain = params.gain if params.gain is not None else agc_gain(rgb, params)
    cam = _dark_linear(rgb, params) * np.float32(gain)
    var = cam * params.shot_noise + params.read_noise
    noisy = cam + np.sqrt(var) * rng.standard_normal(cam.shape, dtype=np.float32)
    return noisy.astype(np.float32)


def process(raw: np.ndarray, params: CameraParams) -> np.ndarray:
    """Linear raw-like -> sRGB float [0, 1] with the camera's white balance (a fixed gray-world
    guess that night lighting fools), colour matrix, gamma and tone curve."""
    gains = np.array([1.9, 1.0, 1.6], np.float32)  # the camera's daylight-ish default
    rgb = np.clip(raw * gains, 0.0, 1.0) @ params.ccm.T
    rgb = np.clip(rgb, 1e-8, 1.0) ** (1 / 2.2)
    return _smoothstep(rgb)


def render(rgb: np.ndarray, params: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Well-exposed RGB float [0, 1] -> RGB uint8 as the camera outputs it at night."""
    out = process(night_linear(rgb, params, rng), params)
    if params.ir:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    u8 = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if params.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), params.jpeg_quality])
        if ok:
            u8 = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    return u8
