"""Night clips with ground truth: real photo scenes, real faces walking through, night as a camera makes it.

What `edge-agent demo`, `benchmarks/night_yield.py` and the integration tests play instead of a
camera. A clip is described by a ClipSpec; write_clip() renders it frame by frame and encodes it
(H.264 through the ffmpeg binary when it is installed, else MPEG-4 Part 2 through OpenCV) and
returns a ClipTruth: the person passes (first and last frame in view) and every face box per
frame, in frame pixels, 1-based frame numbers as the agent's frame_seq counts them.

People: a real face photo (head and shoulders, as in ../shared/datasets/dev_faces or scikit-image's
astronaut) pasted with a soft elliptical mask on a body with a photo texture; the face is
face_px wide in the frame, the body is sized from it (about 7 heads tall), and the person walks
across the frame between enter_s and leave_s.

Night ("camera" look): every frame goes through edge_agent.sim.camera (unprocessing after Brooks
et al. 2019: exposure cut, shot + read noise, the camera's colour cast, optional IR grey), with one
set of camera parameters per clip and fresh noise per frame; events change them during the clip:
"ir_switch" (the IR cut filter drops: grey picture, IR illuminator, exposure x3), "lights_on"
(exposure x4), "headlight" (a soft bright band sweeping across for about 1.5 s).
"luma" look: a gray picture of the scene with a set mean brightness, each person a region a set
number of gray levels brighter than the background behind it, and Gaussian noise of a set sigma:
the motion gate's low-contrast case, exactly as stated.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

HEAD_PER_FACE = 1.35  # head height / face box height
HEADS_TALL = 7.0  # body height in head heights


@dataclass
class Person:
    identity: str
    face_rgb: np.ndarray  # float32 HxWx3 RGB [0, 1], head-and-shoulders photo
    face_box: tuple[int, int, int, int]  # x, y, w, h of the face in face_rgb
    face_px: int  # face width in the frame
    enter_s: float
    leave_s: float
    direction: int = 1  # +1 left to right, -1 right to left
    feet_y: float = 0.95  # feet line, fraction of the frame height
    clothes: np.ndarray | None = None  # float32 RGB texture for the body (None: dark cloth)


@dataclass
class ClipSpec:
    name: str
    scene_rgb: np.ndarray  # float32 HxWx3 RGB [0, 1], the well-exposed scene (resized to fit)
    width: int = 1280
    height: int = 720
    fps: float = 10.0
    seconds: float = 10.0
    people: list[Person] = field(default_factory=list)
    look: str = "camera"  # "camera" | "luma" | "clean"
    camera: object | None = None  # edge_agent.sim.camera.CameraParams for look "camera"
    luma_mean: float = 20.0  # look "luma": background mean gray level
    luma_delta: float = 10.0  # look "luma": the person is this much brighter
    luma_sigma: float = 4.0  # look "luma": Gaussian noise sigma
    events: list[tuple[str, float]] = field(default_factory=list)  # (kind, seconds)
    seed: int = 0
    crf: int = 23  # H.264 quality (ffmpeg's scale; 23 is its default)
    # None: constant quality (crf). A number: encode as an IP camera does, at this capped bit rate
    # with no B-frames (a noisy night scene at crf 23 takes 20+ Mbit/s at 1080p, a camera 2-8)
    bitrate_kbps: int | None = None


@dataclass
class ClipTruth:
    path: str
    name: str
    fps: float
    frames: int
    width: int
    height: int
    codec: str
    passes: list[dict]  # {"identity", "first", "last"} 1-based frames in view
    faces: dict[int, list[dict]]  # frame -> [{"identity", "box": [x, y, w, h]}]
    events: list[tuple[str, float]]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClipTruth:
        d = json.loads(text)
        d["faces"] = {int(k): v for k, v in d["faces"].items()}
        d["events"] = [tuple(e) for e in d["events"]]
        return cls(**d)


def fit_scene(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize and centre-crop a photo (uint8 or float RGB) to cover width x height, float32 [0, 1]."""
    img = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    s = max(width / w, height / h)
    img = cv2.resize(img[..., :3], (max(width, round(w * s)), max(height, round(h * s))),
                     interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return np.clip(img[y0 : y0 + height, x0 : x0 + width], 0.0, 1.0)


# --------------------------------------------------------------------------- people


@dataclass
class _Sprite:
    rgb: np.ndarray  # float32 RGB
    alpha: np.ndarray  # float32 [0, 1]
    face: tuple[float, float, float, float]  # face box in sprite pixels


def _sprite(p: Person, rng: np.random.Generator) -> _Sprite:
    fx, fy, fw, fh = p.face_box
    s = p.face_px / fw
    head = cv2.resize(p.face_rgb, (max(1, round(p.face_rgb.shape[1] * s)), max(1, round(p.face_rgb.shape[0] * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    fx, fy, fw, fh = fx * s, fy * s, fw * s, fh * s
    head_h = fh * HEAD_PER_FACE
    body_h = head_h * HEADS_TALL
    width = int(round(max(head.shape[1], fw * 3.2)))
    top = int(round(max(0.0, fy + fh / 2 - head_h * 0.55)))  # sprite row 0 = top of the head
    height = int(round(body_h))
    rgb = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)
    cx = width / 2
    # body: shoulders/torso, then legs, with a cloth texture
    cloth = p.clothes if p.clothes is not None else np.full((64, 64, 3), 0.2, np.float32)
    cloth = cv2.resize(cloth, (width, height), interpolation=cv2.INTER_LINEAR)
    tint = rng.uniform(0.35, 0.8, 3).astype(np.float32)
    chin = fy + fh - top
    torso = np.zeros((height, width), np.float32)
    cv2.ellipse(torso, (int(cx), int(chin + head_h * 1.4)), (int(fw * 1.45), int(head_h * 1.6)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(torso, (int(cx - fw * 1.2), int(chin + head_h * 1.2)), (int(cx + fw * 1.2), int(chin + head_h * 3.6)), 1.0, -1)
    for lx in (cx - fw * 0.6, cx + fw * 0.6):
        cv2.rectangle(torso, (int(lx - fw * 0.45), int(chin + head_h * 3.4)), (int(lx + fw * 0.45), height - 1), 1.0, -1)
    torso = cv2.GaussianBlur(torso, (0, 0), max(0.8, fw * 0.04))
    rgb += cloth * tint * torso[..., None]
    alpha = np.maximum(alpha, torso)
    # head: the photo under a feathered ellipse around the face (hair and neck included)
    hx0 = int(round(cx - (fx + fw / 2)))
    hy0 = -top
    ell = np.zeros(head.shape[:2], np.float32)
    cv2.ellipse(ell, (int(fx + fw / 2), int(fy + fh * 0.45)), (int(fw * 0.8), int(fh * 1.0)), 0, 0, 360, 1.0, -1)
    ell = cv2.GaussianBlur(ell, (0, 0), max(0.8, fw * 0.08))
    ys, xs = max(0, hy0), max(0, hx0)
    ye, xe = min(height, hy0 + head.shape[0]), min(width, hx0 + head.shape[1])
    a = ell[ys - hy0 : ye - hy0, xs - hx0 : xe - hx0, None]
    rgb[ys:ye, xs:xe] = rgb[ys:ye, xs:xe] * (1 - a) + head[ys - hy0 : ye - hy0, xs - hx0 : xe - hx0] * a
    alpha[ys:ye, xs:xe] = np.maximum(alpha[ys:ye, xs:xe], a[..., 0])
    return _Sprite(rgb=rgb, alpha=alpha, face=(fx + hx0, fy + hy0, fw, fh))


def _place(p: Person, sp: _Sprite, t: float, width: int, height: int) -> tuple[int, int] | None:
    """Top-left of the sprite in the frame at time t, or None when the person is not in the clip."""
    if not p.enter_s <= t <= p.leave_s:
        return None
    u = (t - p.enter_s) / max(p.leave_s - p.enter_s, 1e-6)
    if p.direction < 0:
        u = 1.0 - u
    sw, sh = sp.alpha.shape[1], sp.alpha.shape[0]
    x = -sw + u * (width + sw)
    y = p.feet_y * height - sh + 0.012 * sh * np.sin(t * 2 * np.pi * 1.8)  # a walking bob
    y = max(y, 0.04 * height - sp.face[1])  # very close people: the head stays in the picture
    return int(round(x)), int(round(y))


def _paste(frame: np.ndarray, sp: _Sprite, x: int, y: int, gain: float = 1.0) -> None:
    h, w = frame.shape[:2]
    ys, xs, ye, xe = max(0, y), max(0, x), min(h, y + sp.alpha.shape[0]), min(w, x + sp.alpha.shape[1])
    if ye <= ys or xe <= xs:
        return
    a = sp.alpha[ys - y : ye - y, xs - x : xe - x, None]
    frame[ys:ye, xs:xe] = frame[ys:ye, xs:xe] * (1 - a) + sp.rgb[ys - y : ye - y, xs - x : xe - x] * gain * a


def _face_box(sp: _Sprite, x: int, y: int, width: int, height: int) -> list[int] | None:
    fx, fy, fw, fh = sp.face
    x0, y0, x1, y1 = x + fx, y + fy, x + fx + fw, y + fy + fh
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.8 * fw * fh:
        return None  # less than 80 % of the face in the picture: not counted
    return [int(round(cx0)), int(round(cy0)), int(round(cx1 - cx0)), int(round(cy1 - cy0))]


# --------------------------------------------------------------------------- the night look


def _headlight(t: float, events, width: int) -> np.ndarray | None:
    xs = np.arange(width, dtype=np.float32)
    band = None
    for kind, t0 in events:
        if kind == "headlight" and t0 <= t <= t0 + 1.5:
            cx = -0.3 * width + 1.6 * width * (t - t0) / 1.5
            b = 1.0 + 2.0 * np.exp(-(((xs - cx) / (0.12 * width)) ** 2))
            band = b if band is None else band * b
    return band


def _camera_at(params, t: float, events):
    for kind, t0 in events:
        if t >= t0 and kind == "ir_switch":
            params = replace(params, ir=True, exposure=min(1.0, params.exposure * 3.0))
        elif t >= t0 and kind == "lights_on":
            params = replace(params, exposure=min(1.0, params.exposure * 4.0))
    return params


def _render(spec: ClipSpec, scene: np.ndarray, frame: np.ndarray, person_mask: np.ndarray, t: float,
            rng) -> np.ndarray:
    """The camera's RGB uint8 picture of a well-exposed RGB float frame (look "luma": of the scene,
    with the people as regions exactly luma_delta brighter than what they stand in front of)."""
    if spec.look == "clean":
        return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
    if spec.look == "luma":
        gray = scene.mean(axis=2)
        gray = gray * (spec.luma_mean / max(float(gray.mean()), 1e-6)) + spec.luma_delta * person_mask
        gray += rng.standard_normal(gray.shape, dtype=np.float32) * np.float32(spec.luma_sigma)
        g8 = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g8[..., None], 3, axis=2)
    from edge_agent.sim import camera

    params = _camera_at(spec.camera, t, spec.events)
    return camera.render(frame, replace(params, jpeg_quality=None), rng)


# --------------------------------------------------------------------------- encoding


def camera_rate(crf: int, bitrate_kbps: int | None) -> list[str]:
    """libx264 rate-control arguments: constant quality, or a camera's capped bit rate."""
    if bitrate_kbps is None:
        return ["-crf", str(crf)]
    k = int(bitrate_kbps)
    return ["-b:v", f"{k}k", "-maxrate", f"{k}k", "-bufsize", f"{2 * k}k", "-bf", "0"]


class _Writer:
    def __init__(self, path: Path, width: int, height: int, fps: float, crf: int, bitrate_kbps: int | None = None):
        self.path = path
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            self.codec = "h264 (ffmpeg libx264)"
            self._proc = subprocess.Popen(
                [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                 "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
                 "-preset", "veryfast", *camera_rate(crf, bitrate_kbps), "-g", str(int(fps * 2)),
                 "-pix_fmt", "yuv420p", str(path)],
                stdin=subprocess.PIPE,
            )
            self._cv = None
        else:
            self.codec = "mpeg4 (OpenCV mp4v; install ffmpeg for H.264)"
            self._proc = None
            self._cv = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not self._cv.isOpened():
                raise RuntimeError(f"cannot open a video writer for {path}")

    def write(self, bgr: np.ndarray) -> None:
        if self._proc is not None:
            self._proc.stdin.write(np.ascontiguousarray(bgr).tobytes())
        else:
            self._cv.write(bgr)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise RuntimeError(f"ffmpeg failed to encode {self.path}")
        else:
            self._cv.release()


def write_clip(spec: ClipSpec, path: str | Path) -> ClipTruth:
    """Render and encode spec to path (.mp4); returns the ground truth (also written to path.json)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    W, H = spec.width, spec.height
    scene = fit_scene(spec.scene_rgb, W, H)
    if spec.look == "camera" and spec.camera.gain is None:
        from edge_agent.sim import camera

        # the AGC settled on the empty scene and holds; the events change the light, not the gain
        spec = replace(spec, camera=replace(spec.camera, gain=camera.agc_gain(scene, spec.camera)))
    sprites = [_sprite(p, rng) for p in spec.people]
    n = int(round(spec.seconds * spec.fps))
    faces: dict[int, list[dict]] = {}
    seen: dict[int, list[int]] = {}
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = _Writer(tmp, W, H, spec.fps, spec.crf, spec.bitrate_kbps)
    try:
        for i in range(n):
            t = i / spec.fps
            frame = scene.copy()
            mask = np.zeros((H, W), np.float32)
            for k, (p, sp) in enumerate(zip(spec.people, sprites, strict=True)):
                pos = _place(p, sp, t, W, H)
                if pos is None:
                    continue
                x, y = pos
                if x >= W or y >= H or x + sp.alpha.shape[1] <= 0 or y + sp.alpha.shape[0] <= 0:
                    continue
                _paste(frame, sp, x, y)
                _paste(mask[..., None], _Sprite(np.ones_like(sp.alpha)[..., None], sp.alpha, sp.face), x, y)
                seen.setdefault(k, []).append(i + 1)
                box = _face_box(sp, *pos, W, H)
                if box is not None:
                    faces.setdefault(i + 1, []).append({"identity": p.identity, "box": box})
            band = _headlight(t, spec.events, W)
            if band is not None:
                frame *= band[None, :, None]
            rgb = _render(spec, scene, frame, mask, t, rng)
            writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    finally:
        writer.close()
    tmp.replace(path)
    passes = [{"identity": spec.people[k].identity, "first": fr[0], "last": fr[-1]} for k, fr in sorted(seen.items())]
    truth = ClipTruth(path=str(path), name=spec.name, fps=spec.fps, frames=n, width=W, height=H,
                      codec=writer.codec, passes=passes, faces=faces, events=list(spec.events))
    path.with_suffix(path.suffix + ".json").write_text(truth.to_json())
    return truth
