"""`edge-agent demo`: a built-in night clip through the whole pipeline into the local sink.

The clip is generated at run time (nothing big in git) from images that ship inside the
scikit-image wheel: a dark synthetic room (brick wall, gravel floor, a door, a window) under
realistic sensor noise (shot noise + read noise at a few percent of normal exposure), static for a
while, then a person-sized figure whose head is the astronaut photo's face walks across, then
static again. generate_night_clip() is also what the integration tests use.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

CLIP_VERSION = 2
REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    fps: float
    frames: int
    width: int
    height: int
    person_frames: tuple[int, int] | None  # first and last 1-based frame index with the person in view
    light_jump_frame: int | None  # 1-based frame index where the lights come on


# --------------------------------------------------------------------------- the scene


def _tex(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _room(width: int, height: int) -> np.ndarray:
    """A static room as linear-ish BGR float32 in [0, 1] (well exposed)."""
    import skimage.data as data

    horizon = int(height * 0.68)
    scene = np.empty((height, width, 3), np.float32)
    brick = _tex(data.brick(), width, horizon)
    scene[:horizon] = brick[..., None] * np.array([0.55, 0.62, 0.78], np.float32)  # reddish wall (BGR)
    gravel = _tex(data.gravel(), width, height - horizon)
    scene[horizon:] = gravel[..., None] * np.array([0.55, 0.55, 0.5], np.float32)
    # a door with a frame, a window, a skirting board
    dx0, dx1, dy0 = int(width * 0.70), int(width * 0.84), int(height * 0.22)
    scene[dy0:horizon, dx0 - 6 : dx1 + 6] = (0.75, 0.75, 0.75)
    scene[dy0 + 6 : horizon, dx0:dx1] = (0.18, 0.28, 0.38)
    cv2.circle(scene, (dx1 - 14, (dy0 + horizon) // 2), max(3, width // 200), (0.7, 0.8, 0.85), -1)
    wx0, wx1, wy0, wy1 = int(width * 0.08), int(width * 0.28), int(height * 0.12), int(height * 0.42)
    scene[wy0:wy1, wx0:wx1] = (0.45, 0.35, 0.25)
    scene[wy0:wy1, (wx0 + wx1) // 2 - 3 : (wx0 + wx1) // 2 + 3] = 0.8
    scene[(wy0 + wy1) // 2 - 3 : (wy0 + wy1) // 2 + 3, wx0:wx1] = 0.8
    scene[horizon - 8 : horizon] = 0.7
    # a ceiling lamp's falloff
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    falloff = 1.0 - 0.45 * np.clip(np.hypot((xx - width * 0.5) / width, (yy - height * 0.1) / height) * 1.6, 0, 1)
    return np.clip(scene * falloff[..., None], 0.0, 1.0)


def _person(height: int) -> tuple[np.ndarray, np.ndarray]:
    """A standing figure (BGR float32 in [0, 1]) and its alpha; the head is a real face photo."""
    import skimage.data as data

    astro = data.astronaut()[:, :, ::-1].astype(np.float32) / 255.0  # RGB -> BGR
    head = astro[30:250, 130:330]  # the face (detector box ~ x 178-261, y 74-157) with hair and neck
    ph = int(height * 0.78)
    pw = int(ph * 0.36)
    hh = int(ph * 0.34)
    hw = int(hh * head.shape[1] / head.shape[0])
    fig = np.zeros((ph, pw, 3), np.float32)
    alpha = np.zeros((ph, pw), np.float32)
    # coat and legs
    coat = (0.22, 0.2, 0.35)
    cv2.ellipse(fig, (pw // 2, hh + ph // 5), (pw // 2 - 1, ph // 4), 0, 0, 360, coat, -1)
    cv2.ellipse(alpha, (pw // 2, hh + ph // 5), (pw // 2 - 1, ph // 4), 0, 0, 360, 1.0, -1)
    cv2.rectangle(fig, (pw // 2 - pw // 3, hh + ph // 5), (pw // 2 + pw // 3, int(ph * 0.72)), coat, -1)
    cv2.rectangle(alpha, (pw // 2 - pw // 3, hh + ph // 5), (pw // 2 + pw // 3, int(ph * 0.72)), 1.0, -1)
    for cx in (pw // 2 - pw // 6, pw // 2 + pw // 6):
        cv2.rectangle(fig, (cx - pw // 9, int(ph * 0.7)), (cx + pw // 9, ph - 1), (0.15, 0.12, 0.12), -1)
        cv2.rectangle(alpha, (cx - pw // 9, int(ph * 0.7)), (cx + pw // 9, ph - 1), 1.0, -1)
    head = cv2.resize(head, (hw, hh), interpolation=cv2.INTER_AREA)
    x0 = (pw - hw) // 2
    head_alpha = np.zeros((hh, hw), np.float32)
    cv2.ellipse(head_alpha, (hw // 2, hh // 2), (hw // 2 - 1, hh // 2 - 1), 0, 0, 360, 1.0, -1)
    x0 = (pw - hw) // 2
    if x0 < 0:  # a narrow figure: centre-crop the head
        head, head_alpha, x0, hw = head[:, -x0 : -x0 + pw], head_alpha[:, -x0 : -x0 + pw], 0, pw
    region = fig[:hh, x0 : x0 + hw]
    a = head_alpha[..., None]
    fig[:hh, x0 : x0 + hw] = region * (1 - a) + head * a
    alpha[:hh, x0 : x0 + hw] = np.maximum(alpha[:hh, x0 : x0 + hw], head_alpha)
    return fig, alpha


def _darken(scene: np.ndarray, exposure: float, rng: np.random.Generator) -> np.ndarray:
    """Scale to a night exposure and add sensor noise: shot noise (signal-dependent, the Gaussian
    approximation of Poisson, ~7x cheaper to draw) and read noise (mostly luma, a little chroma)."""
    electrons_per_level = 1.5  # a small sensor pixel: few electrons per 8-bit level
    signal = scene * np.float32(255.0 * exposure)
    shot = np.sqrt(signal / electrons_per_level) * rng.standard_normal(scene.shape, dtype=np.float32)
    read = rng.standard_normal(scene.shape[:2], dtype=np.float32)[..., None] * np.float32(2.0)
    chroma = rng.standard_normal(scene.shape, dtype=np.float32)
    return np.clip(signal + shot + read + chroma + 2.0, 0, 255).astype(np.uint8)  # +2: black level


def generate_night_clip(
    path: str | Path,
    width: int = 1280,
    height: int = 720,
    fps: float = 12.0,
    seconds: float = 12.0,
    person: tuple[float, float] | None = (3.0, 8.5),
    light_jump_at: float | None = None,
    exposure: float = 0.2,
    seed: int = 0,
) -> ClipInfo:
    """Write the night clip to path (.avi, MJPG). person=(enter_s, leave_s) or None;
    light_jump_at = seconds at which the lights come on (exposure x3.5), or None."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    room = _room(width, height)
    n = int(round(seconds * fps))
    fig = alpha = None
    if person is not None:
        fig, alpha = _person(height)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write the clip {tmp} (OpenCV has no MJPG writer?)")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 92)
    first = last = None
    jump_frame = None
    for i in range(n):
        t = i / fps
        scene = room.copy()
        if fig is not None and person[0] <= t < person[1]:
            # walk from just outside the left edge to just outside the right edge
            ph, pw = alpha.shape
            u = (t - person[0]) / (person[1] - person[0])
            x = int(round(-pw + u * (width + pw)))
            y = height - ph - int(height * 0.04)
            x0, x1 = max(x, 0), min(x + pw, width)
            if x1 > x0:
                a = alpha[:, x0 - x : x1 - x, None]
                scene[y : y + ph, x0:x1] = scene[y : y + ph, x0:x1] * (1 - a) + fig[:, x0 - x : x1 - x] * a
                first = i + 1 if first is None else first
                last = i + 1
        exp = exposure
        if light_jump_at is not None and t >= light_jump_at:
            exp = exposure * 3.5
            jump_frame = i + 1 if jump_frame is None else jump_frame
        writer.write(_darken(scene, exp, rng))
    writer.release()
    os.replace(tmp, path)
    return ClipInfo(path, fps, n, width, height, (first, last) if first else None, jump_frame)


# --------------------------------------------------------------------------- the demo


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nightwatch-edge"


def demo_config_data(clip: Path, out_dir: Path, models_dir: Path) -> dict:
    """configs/demo.yaml (when present) with the clip, output and models folders filled in."""
    data: dict = {}
    if DEMO_CONFIG.is_file():
        data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")) or {}
    cams = data.get("cameras") or [{"name": "demo"}]
    cams[0]["source"] = {**cams[0].get("source", {}), "file": str(clip), "loop": False}
    cams[0]["source"].pop("url", None)
    cams[0]["source"].pop("device", None)
    data["cameras"] = cams[:1]
    data.setdefault("models", {})["dir"] = str(models_dir)
    data.setdefault("publish", {})["sink"] = "local"
    data["publish"].setdefault("local", {})["dir"] = str(out_dir)
    data["publish"].pop("mqtt", None)
    data.setdefault("api", {})["enabled"] = False
    data["state_dir"] = str(out_dir / ".state")  # the marker and open events stay with the output
    return data


def summarize(out_dir: Path) -> dict:
    """Counts of what the local sink wrote under out_dir."""
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out_dir.rglob("event-*.json"))]
    events = {d["event_id"] for d in docs}
    return {
        "events": len(events),
        "messages": len(docs),
        "by_phase": {ph: sum(1 for d in docs if d["phase"] == ph) for ph in ("new", "update", "end")},
        "enhanced_snapshots": sum(1 for d in docs if d["enhanced"]),
        "face_crops": sum(len(d["faces"]) for d in docs),
        "faces_super_resolved": sum(1 for d in docs for f in d["faces"] if f["super_resolved"]),
        "event_dirs": sorted({str(p.parent) for p in out_dir.rglob("event-*.json")}),
    }


def run_demo(out_dir: str | Path = "demo_output", seconds: float | None = None) -> int:
    from edge_agent.app import Agent, StartupError, setup_logging
    from edge_agent.config.loader import ConfigError, parse_config
    from edge_agent.inference.base import ModelError
    from edge_agent.inference.loader import default_models_dir
    from edge_agent.inference.manifest import MANIFEST_NAME

    out_dir = Path(out_dir).resolve()
    models_dir = default_models_dir().resolve()
    if not (models_dir / MANIFEST_NAME).is_file():
        print(
            f"edge-agent demo: the models are missing: {models_dir / MANIFEST_NAME} does not exist.\n"
            "  The demo needs the shipped low-light and face SR models (models/manifest.yaml and the\n"
            "  files it lists). Build them with `edge-export package`, or point NIGHTWATCH_MODELS\n"
            "  at a folder that has them.",
            file=sys.stderr,
        )
        return 1

    clip = _cache_dir() / f"demo_night_clip_v{CLIP_VERSION}.avi"
    if not clip.is_file():
        print(f"generating the night clip (once) -> {clip}")
        info = generate_night_clip(clip)
        print(f"  {info.frames} frames {info.width}x{info.height} @ {info.fps:g} fps; person in view "
              f"in frames {info.person_frames[0]}..{info.person_frames[1]}")
    try:
        text = yaml.safe_dump(demo_config_data(clip, out_dir, models_dir), sort_keys=False)
        cfg = parse_config(text, "demo config")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(cfg.logging.level)
    try:
        agent = Agent(cfg)
    except (ModelError, StartupError) as exc:
        print(f"edge-agent demo: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"running the agent on the night clip ({clip.name}); events go to {out_dir}")
    t0 = time.monotonic()
    agent.start()
    try:
        agent.wait(seconds)
    except KeyboardInterrupt:
        print("interrupted; stopping")
    finally:
        agent.stop()
    took = time.monotonic() - t0

    s = summarize(out_dir)
    st = agent.stats[cfg.cameras[0].name].snapshot()
    print()
    print(f"demo finished in {took:.1f} s: {st['frames']} frames read, {st['motion_events']} motion event(s)")
    print(f"  events: {s['events']} ({s['by_phase']['new']} new, {s['by_phase']['update']} update, "
          f"{s['by_phase']['end']} end messages)")
    print(f"  enhanced snapshots: {s['enhanced_snapshots']}; face crops: {s['face_crops']} "
          f"({s['faces_super_resolved']} super-resolved)")
    avg = st["stage_ms_avg"]
    if avg:
        print("  average ms per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(avg.items())))
    models = ", ".join(f"{m.name} {m.version} ({m.backend}, {m.precision})" for m in agent.stages.models.values())
    print(f"  models: {models}")
    print(f"where to look: {out_dir}")
    for d in s["event_dirs"][:10]:
        print(f"  {d}/  (event-*.json, original.jpg, enhanced.jpg, face_<n>.png, face_<n>_sr.png)")
    if s["events"] == 0:
        print("no events were written (no motion found?)", file=sys.stderr)
        return 1
    return 0
