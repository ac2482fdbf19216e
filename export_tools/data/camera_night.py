"""Seeded night frames "as a camera makes them" from well-lit sRGB photos (numpy + OpenCV).

Follows Brooks et al. 2019, "Unprocessing Images for Learned Raw Denoising" (CVPR): the photo is
*unprocessed* back to the camera's linear raw space, darkened and given sensor noise there, then
*re-processed* by a camera ISP whose settings are not quite right, as a CCTV camera's are at night.

unprocess: uint8 sRGB -> inverse global tone curve (inverse smoothstep) -> inverse sRGB gamma
(exact piecewise curve) -> sRGB->camera colour matrix (random convex mix of four real cameras'
XYZ->camera matrices, rows normalised to 1) -> inverse white balance and digital gain.
synth_camera_night then: exposure (fraction of the light, log-uniform) -> heteroscedastic
shot + read noise (variance = shot * x + read, Brooks' joint sampling of the two) -> clip to [0, 1]
-> process: the ISP's white balance (true gains times an auto white balance error: a colour cast)
-> the ISP's colour matrix (a slightly wrong mix) -> auto-exposure gain (to a random target mean,
capped by the sensor's maximum gain, so very dark scenes stay dark and noisy) -> smoothstep tone
curve + sRGB gamma -> uint8 -> optional JPEG. Optional IR night mode: the camera is monochrome, the
frame is the scene's linear luminance, with one noise draw copied to the three channels.
Every random draw comes from the numpy Generator passed in; the draws are returned in `meta`.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

# XYZ -> camera matrices of four real cameras, as published with Brooks et al. 2019
# (github.com/timothybrooks/unprocessing, unprocess.py, random_ccm).
XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],  # linear sRGB (D65) -> XYZ
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])
LUMA = np.array([0.2126729, 0.7151522, 0.0721750])  # linear sRGB -> luminance Y
RED_GAIN = (1.9, 2.4)  # white balance gains of the camera (Brooks), uniform
BLUE_GAIN = (1.5, 1.9)
DIGITAL_GAIN_INV = (0.8, 0.1)  # overall gain = 1 / N(mean, std) (Brooks' rgb_gain)


class CameraNightSpec(BaseModel):
    """Ranges of the night capture and of the ISP's errors; sampled per frame."""

    model_config = ConfigDict(extra="forbid")

    exposure: tuple[float, float] = (0.01, 0.15)  # fraction of the light, log-uniform
    noise: bool = True  # False: no sensor noise (tests, ablations)
    shot_noise: tuple[float, float] = (1e-4, 1.2e-2)  # log-uniform; read noise follows (Brooks)
    wb_error: tuple[float, float] = (0.8, 1.25)  # AWB error factor on red and blue gains, log-uniform
    ccm_error: float = Field(0.3, ge=0.0, le=1.0)  # at most this much of another camera's matrix
    ae_target: tuple[float, float] = (0.02, 0.2)  # auto exposure: target mean linear level
    max_gain: tuple[float, float] = (1.0, 4.0)  # the ISP's largest brightening gain
    ir_prob: float = Field(0.2, ge=0.0, le=1.0)  # monochrome IR night mode
    jpeg_prob: float = Field(0.5, ge=0.0, le=1.0)
    jpeg_quality: tuple[int, int] = (50, 95)

    @model_validator(mode="after")
    def _ranges(self) -> CameraNightSpec:
        limits = {"exposure": 1.0, "shot_noise": 1.0, "wb_error": 10.0, "ae_target": 1.0,
                  "max_gain": 1e4, "jpeg_quality": 100}
        for name, top in limits.items():
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= top:
                raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high <= {top}, "
                                 f"got {(lo, hi)}")
        if self.max_gain[0] < 1.0:
            raise ValueError(f"max_gain must be >= 1 (the ISP brightens, never darkens), got {self.max_gain}")
        return self


# The night frames every low-light evaluation uses (verify, benchmarks/lowlight_quality.py, the trainer's
# held-out score, the blockiness test): the dark end of the training range, colour (no IR), JPEG.
EVAL_SPEC = CameraNightSpec(exposure=(0.01, 0.04), ir_prob=0.0, jpeg_prob=1.0, jpeg_quality=(70, 90))


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = getattr(rgb, "shape", type(rgb).__name__)
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {got} {getattr(rgb, 'dtype', '')}".rstrip())


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def smoothstep(x: np.ndarray) -> np.ndarray:
    return 3.0 * x**2 - 2.0 * x**3


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1.0 / 2.4) - 0.055)


def random_rgb2cam(rng: np.random.Generator) -> np.ndarray:
    """sRGB -> camera matrix: a random convex mix of XYZ2CAMS, times RGB2XYZ, rows summing to 1."""
    w = rng.uniform(1e-8, 1.0, size=len(XYZ2CAMS))
    return _rgb2cam((XYZ2CAMS * w[:, None, None]).sum(0) / w.sum())


def _rgb2cam(xyz2cam: np.ndarray) -> np.ndarray:
    m = xyz2cam @ RGB2XYZ
    return m / m.sum(axis=1, keepdims=True)  # rows sum to 1: grey stays grey


def _wb(params: dict) -> np.ndarray:
    """The white balance multipliers [R, G, B], the digital gain included."""
    return np.array([params["red_gain"], 1.0, params["blue_gain"]]) * params["digital_gain"]


def _scene_linear(rgb: np.ndarray) -> np.ndarray:
    return srgb_to_linear(inverse_smoothstep(rgb.astype(np.float32) / 255.0)).astype(np.float32)


def unprocess(rgb: np.ndarray, rng: np.random.Generator, params: dict | None = None) -> tuple[np.ndarray, dict]:
    """uint8 sRGB HxWx3 -> (camera raw, linear float32 HxWx3, not clipped; params of the camera).

    params: rgb2cam (3x3 list), red_gain, blue_gain, digital_gain. Pass `params` to reuse them
    (rng is then not used)."""
    _check_rgb(rgb)
    if params is None:
        rgb2cam = random_rgb2cam(rng)
        red, blue = rng.uniform(*RED_GAIN), rng.uniform(*BLUE_GAIN)
        digital = 1.0 / max(rng.normal(*DIGITAL_GAIN_INV), 0.4)
        params = {"rgb2cam": rgb2cam.tolist(), "red_gain": float(red), "blue_gain": float(blue),
                  "digital_gain": float(digital)}
    cam = _scene_linear(rgb) @ np.asarray(params["rgb2cam"], np.float32).T
    return (cam / _wb(params).astype(np.float32)).astype(np.float32), params


def _isp_linear(raw: np.ndarray, params: dict) -> np.ndarray:
    """White balance + colour matrix (or, in IR mode, only the digital gain): raw -> linear sRGB."""
    if params.get("ir", False):
        return np.repeat(raw[..., :1] * np.float32(params["digital_gain"]), 3, axis=2)
    cam2rgb = np.linalg.inv(np.asarray(params["rgb2cam"], np.float64)).astype(np.float32)
    return (raw * _wb(params).astype(np.float32)) @ cam2rgb.T


def process(linear: np.ndarray, params: dict) -> np.ndarray:
    """The camera ISP: raw linear HxWx3 -> uint8 sRGB, with the white balance, colour matrix and
    digital gain in `params` (as unprocess returns them), the auto-exposure gain
    params.get("isp_gain", 1) and, if params.get("ir"), monochrome output."""
    lin = _isp_linear(np.asarray(linear, np.float32), params) * np.float32(params.get("isp_gain", 1.0))
    out = smoothstep(linear_to_srgb(np.clip(lin, 0.0, 1.0)))
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip with cv2; a monochrome frame (equal channels) is coded as greyscale."""
    mono = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))
    ok, buf = cv2.imencode(".jpg", rgb[..., 0] if mono else rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    if mono:
        return np.repeat(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)[..., None], 3, axis=2)
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def synth_camera_night(rgb: np.ndarray, spec: CameraNightSpec, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Well-lit uint8 RGB HxWx3 -> (night uint8 RGB of the same shape, meta of the draws).

    meta: the true camera (rgb2cam, red_gain, blue_gain, digital_gain), exposure, shot, read, ir,
    jpeg_quality (None: no JPEG), wb_error [red, blue], ccm_error, and "isp": the settings the ISP
    used (pass them to `process` to re-process another raw frame the same way)."""
    _check_rgb(rgb)
    s = spec
    lin, meta = unprocess(rgb, rng)
    # every scalar draw first, in a fixed order, so changing one range leaves the others alone
    exposure = _loguniform(rng, *s.exposure)
    log_shot = rng.uniform(np.log(s.shot_noise[0]), np.log(s.shot_noise[1]))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)  # Brooks' fit over real sensors
    shot, read = (float(np.exp(log_shot)), float(np.exp(log_read))) if s.noise else (0.0, 0.0)
    wb_err = [_loguniform(rng, *s.wb_error) for _ in range(2)]
    ccm_err = float(rng.uniform(0.0, s.ccm_error))
    other = random_rgb2cam(rng)
    target, max_gain = rng.uniform(*s.ae_target), rng.uniform(*s.max_gain)
    ir = bool(rng.uniform() < s.ir_prob)
    use_jpeg, quality = rng.uniform() < s.jpeg_prob, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1))

    if ir:  # monochrome sensor: the scene's luminance, with the camera's overall gain undone
        y = _scene_linear(rgb) @ LUMA.astype(np.float32) / np.float32(meta["digital_gain"])
        lin = y[..., None]
    raw = lin * np.float32(exposure)
    if s.noise:
        var = np.maximum(shot * raw + read, 0.0)
        raw = raw + np.sqrt(var).astype(np.float32) * rng.standard_normal(raw.shape, dtype=np.float32)
    raw = np.clip(raw, 0.0, 1.0)
    if ir:
        raw = np.repeat(raw, 3, axis=2)

    isp_ccm = np.asarray(meta["rgb2cam"]) * (1.0 - ccm_err) + other * ccm_err
    isp = {"rgb2cam": (isp_ccm / isp_ccm.sum(axis=1, keepdims=True)).tolist(),
           "red_gain": meta["red_gain"] * wb_err[0], "blue_gain": meta["blue_gain"] * wb_err[1],
           "digital_gain": meta["digital_gain"], "ir": ir, "isp_gain": 1.0}
    level = float(_isp_linear(raw, isp).mean())  # auto exposure meters the white-balanced frame
    isp["isp_gain"] = float(np.clip(target / max(level, 1e-6), 1.0, max_gain))
    out = process(raw, isp)
    if use_jpeg:
        out = jpeg(out, quality)
    meta.update({"exposure": exposure, "shot": shot, "read": read, "ir": ir,
                 "jpeg_quality": quality if use_jpeg else None, "wb_error": wb_err, "ccm_error": ccm_err,
                 "ae_target": float(target), "max_gain": float(max_gain), "isp": isp})
    return out, meta
