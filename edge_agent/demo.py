"""`edge-agent demo`: a built-in night clip through the whole pipeline into the local sink.

The clip is generated at run time (nothing big in git) by the generator the night-yield benchmark
uses (edge_agent.sim.night_clip), from photos that ship inside the scikit-image wheel: the rocket
launch pad as the scene at 5 % exposure with a camera's noise and colour cast, static for a while,
then a person whose head is the astronaut photo walks across, then static again.
generate_night_clip() is also what the integration tests use.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

CLIP_VERSION = 3  # 3: the benchmark's generator (a real photo scene)
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


# --------------------------------------------------------------------------- the clip

# the astronaut photo's head and shoulders, and its face box in that crop (x, y, w, h)
ASTRONAUT_CROP = (slice(0, 300), slice(80, 380))
ASTRONAUT_FACE = (98, 74, 83, 83)


def clip_spec(width: int = 1280, height: int = 720, fps: float = 12.0, seconds: float = 12.0,
              person: tuple[float, float] | None = (3.0, 8.5), light_jump_at: float | None = None,
              exposure: float = 0.05, seed: int = 0):
    """The demo clip as an edge_agent.sim.night_clip.ClipSpec: scikit-image's rocket photo as the
    scene at night, the astronaut walking across (face about a fourteenth of the frame height wide, the person about two thirds of it tall)."""
    import skimage.data as data

    from edge_agent.sim import camera
    from edge_agent.sim.night_clip import ClipSpec, Person

    rng = np.random.default_rng(seed)
    params = camera.sample_params(rng, exposure=(exposure, exposure), jpeg_quality=None)
    # a typical small-sensor camera at night: fixed, moderate noise (Brooks et al.'s middle range)
    params = replace(params, shot_noise=2e-3, read_noise=4e-6)
    people = []
    if person is not None:
        face = data.astronaut()[ASTRONAUT_CROP].astype(np.float32) / 255.0
        cloth = np.repeat((data.gravel().astype(np.float32) / 255.0)[..., None], 3, axis=2) * 0.6
        people.append(Person(identity="astronaut", face_rgb=face, face_box=ASTRONAUT_FACE,
                             face_px=max(32, round(height / 14)), enter_s=person[0], leave_s=person[1],
                             feet_y=0.97, clothes=cloth))
    events = [("lights_on", float(light_jump_at))] if light_jump_at is not None else []
    return ClipSpec(name="demo", scene_rgb=data.rocket(), width=width, height=height, fps=fps,
                    seconds=seconds, people=people, camera=params, events=events, seed=seed)


def generate_night_clip(
    path: str | Path,
    width: int = 1280,
    height: int = 720,
    fps: float = 12.0,
    seconds: float = 12.0,
    person: tuple[float, float] | None = (3.0, 8.5),
    light_jump_at: float | None = None,
    exposure: float = 0.05,
    seed: int = 0,
) -> ClipInfo:
    """Write the demo's night clip to path with the benchmark's generator (edge_agent.sim.night_clip:
    a real photo scene, a real face walking in, night as a camera makes it, H.264 when ffmpeg is
    installed) and its ground truth to path + ".json". person=(enter_s, leave_s) or None;
    light_jump_at = seconds at which the lights come on (exposure x4), or None."""
    from edge_agent.sim.night_clip import write_clip

    spec = clip_spec(width, height, fps, seconds, person, light_jump_at, exposure, seed)
    truth = write_clip(spec, path)
    passes = truth.passes
    jump = None
    if light_jump_at is not None:
        jump = next((i + 1 for i in range(truth.frames) if i / fps >= light_jump_at), None)
    return ClipInfo(Path(truth.path), fps, truth.frames, width, height,
                    (passes[0]["first"], passes[0]["last"]) if passes else None, jump)


# --------------------------------------------------------------------------- the demo


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nightwatch-edge"


def clip_path() -> Path:
    """Where the demo keeps its generated clip (made once, reused)."""
    return _cache_dir() / f"demo_night_clip_v{CLIP_VERSION}.mp4"


def _faces_in_view(clip: Path) -> int | None:
    """Frames of the clip with a face in view, from the generator's ground truth (None if absent)."""
    truth = clip.with_suffix(clip.suffix + ".json")
    try:
        return len(json.loads(truth.read_text(encoding="utf-8"))["faces"])
    except (OSError, ValueError, KeyError):
        return None


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
    paths = sorted(out_dir.rglob("event-*.json"))
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    events = {d["event_id"] for d in docs}
    face_pairs = [  # (the crop as the camera saw it, its super-resolved version), best score first
        (f["score"], str(p.parent / f["crop"]), str(p.parent / f["sr"]) if f["sr"] else None)
        for p, d in zip(paths, docs, strict=True) for f in d["faces"] if f.get("crop")
    ]
    face_pairs.sort(key=lambda t: -t[0])
    return {
        "events": len(events),
        "messages": len(docs),
        "by_phase": {ph: sum(1 for d in docs if d["phase"] == ph) for ph in ("new", "update", "end")},
        "enhanced_snapshots": sum(1 for d in docs if d["enhanced"]),
        "face_crops": sum(len(d["faces"]) for d in docs),
        "faces_super_resolved": sum(1 for d in docs for f in d["faces"] if f["super_resolved"]),
        "event_dirs": sorted({str(p.parent) for p in paths}),
        "face_pairs": [(crop, sr) for _, crop, sr in face_pairs],
    }


def run_demo(out_dir: str | Path = "demo_output", seconds: float | None = None) -> int:
    from edge_agent.app import Agent, StartupError
    from edge_agent.config.loader import ConfigError, parse_config
    from edge_agent.inference.base import ModelError
    from edge_agent.inference.loader import default_models_dir
    from edge_agent.inference.manifest import MANIFEST_NAME
    from edge_agent.run import setup_logging

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

    clip = clip_path()
    if not clip.is_file():
        print(f"generating the night clip (once) -> {clip}")
        info = generate_night_clip(clip)
        print(f"  {info.frames} frames {info.width}x{info.height} @ {info.fps:g} fps; person in view "
              f"in frames {info.person_frames[0]}..{info.person_frames[1]}")
    faces_in_view = _faces_in_view(clip)
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
    print(f"  faces found: {s['face_crops']} crop(s) published"
          + (f" (the clip shows a face in {faces_in_view} frames)" if faces_in_view is not None else ""))
    if s["face_pairs"]:
        print("  the dark face before and after (best detections first):")
        for crop, sr in s["face_pairs"][:3]:
            print(f"    before: {crop}")
            print(f"    after:  {sr if sr else '(not super-resolved)'}")
    print(f"where to look: {out_dir}")
    for d in s["event_dirs"][:10]:
        print(f"  {d}/  (event-*.json, original.jpg, enhanced.jpg, face_<n>.png, face_<n>_sr.png)")
    if s["events"] == 0:
        print("no events were written (no motion found?)", file=sys.stderr)
        return 1
    return 0
