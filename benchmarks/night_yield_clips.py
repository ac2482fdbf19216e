"""The night-yield benchmark's clips: a seeded catalogue, rendered once into a cache folder.

Families (all 1280x720, 10 fps, 10 s):
- "faces":  two people per clip walk through a real photo scene; real faces (dev faces and
  scikit-image's astronaut) 24-112 px wide (log-uniform); night as a camera makes it
  (exposure 2-15 %, shot + read noise, the camera's colour cast, a quarter of the clips in IR grey;
  H.264). Each has a "clean" twin (the same clip, well exposed, no noise) for the clean recall.
- "motion": the motion gate's low-contrast case exactly as the issue states it: a gray night
  picture of mean luma 15-30, Gaussian noise sigma 2-4, one person 10-14 gray levels brighter.
- "empty":  no person at all: sensor noise only, the IR cut filter switching, lights coming on,
  a car's headlights sweeping across. Every event here is a false event.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.sim.night_clip import ClipSpec, ClipTruth, Person, write_clip  # noqa: E402
from export_tools.data.images import SHARED, list_images, read_rgb  # noqa: E402

CATALOGUE_VERSION = 2  # 2: the camera has AGC (edge_agent.sim.camera.agc_gain)
SIZE_RANGE = (24, 112)


@dataclass(frozen=True)
class Face:
    identity: str
    rgb: np.ndarray  # float32 RGB [0, 1]
    box: tuple[int, int, int, int]  # the face in rgb (dlib's detector on the clean photo)
    held_out: bool  # never used to train our models


def face_box_dlib(rgb_u8: np.ndarray) -> tuple[int, int, int, int] | None:
    import dlib

    dets = dlib.get_frontal_face_detector()(rgb_u8, 1)
    if not dets:
        return None
    d = max(dets, key=lambda r: r.width() * r.height())
    return (max(0, d.left()), max(0, d.top()), d.width(), d.height())


def load_faces() -> list[Face]:
    """The identities: dev faces (sorted; even index held out, odd index may be trained on) + astronaut."""
    import skimage.data

    faces = []
    for i, path in enumerate(list_images(SHARED / "datasets" / "dev_faces")):
        rgb = read_rgb(path)
        box = face_box_dlib(rgb)
        if box is None:
            print(f"night_yield: no face found by dlib in {path.name}; left out", file=sys.stderr)
            continue
        faces.append(Face(path.stem, rgb.astype(np.float32) / 255.0, box, held_out=i % 2 == 0))
    astro = skimage.data.astronaut()[:300, 80:380]
    box = face_box_dlib(astro)
    if box is not None:
        faces.append(Face("astronaut", astro.astype(np.float32) / 255.0, box, held_out=True))
    return faces


def scenes() -> list[np.ndarray]:
    import skimage.data

    out = [skimage.data.rocket(), skimage.data.coffee()]
    for path in list_images(SHARED / "datasets" / "train_natural"):
        img = read_rgb(path)
        if min(img.shape[:2]) >= 250:
            out.append(img)
    return out


def clothes(rng: np.random.Generator) -> np.ndarray:
    import skimage.data

    tex = [skimage.data.grass(), skimage.data.gravel(), skimage.data.brick()][int(rng.integers(3))]
    return np.repeat((tex.astype(np.float32) / 255.0)[..., None], 3, axis=2)


def catalogue(seed: int = 2026, n_faces: int = 16, n_motion: int = 8) -> list[tuple[str, ClipSpec]]:
    """(family, spec) for every clip, deterministic for a seed."""
    from edge_agent.sim import camera

    rng = np.random.default_rng(seed)
    faces, pool = load_faces(), scenes()
    out: list[tuple[str, ClipSpec]] = []
    k = 0
    for i in range(n_faces):
        people = []
        for j in range(2):
            f = faces[k % len(faces)]
            k += 1
            size = int(round(np.exp(rng.uniform(np.log(SIZE_RANGE[0]), np.log(SIZE_RANGE[1])))))
            enter = 0.8 + j * 2.5 + rng.uniform(0, 0.6)
            people.append(Person(identity=f.identity, face_rgb=f.rgb, face_box=f.box, face_px=size,
                                 enter_s=enter, leave_s=enter + rng.uniform(4.5, 6.0),
                                 direction=1 if rng.random() < 0.5 else -1,
                                 feet_y=float(rng.uniform(0.85, 1.3)), clothes=clothes(rng)))
        scene = pool[int(rng.integers(len(pool)))]
        params = camera.sample_params(rng, exposure=(0.02, 0.15), ir_prob=0.25, jpeg_quality=None)
        s = int(rng.integers(1 << 30))
        out.append(("faces", ClipSpec(name=f"faces{i:02d}", scene_rgb=scene, people=people, camera=params, seed=s)))
        out.append(("clean", ClipSpec(name=f"clean{i:02d}", scene_rgb=scene, people=people, look="clean", seed=s)))
    for i in range(n_motion):
        f = faces[int(rng.integers(len(faces)))]
        p = Person(identity=f.identity, face_rgb=f.rgb, face_box=f.box, face_px=int(rng.integers(30, 60)),
                   enter_s=2.0, leave_s=8.0, direction=1 if i % 2 else -1, feet_y=float(rng.uniform(0.9, 1.0)),
                   clothes=clothes(rng))
        out.append(("motion", ClipSpec(
            name=f"motion{i:02d}", scene_rgb=pool[int(rng.integers(len(pool)))], people=[p], look="luma",
            luma_mean=float(rng.uniform(15, 30)), luma_delta=float(rng.uniform(10, 14)),
            luma_sigma=float(rng.uniform(2, 4)), seed=int(rng.integers(1 << 30)))))
    empty = [("noise", []), ("noise", []), ("ir_switch", [("ir_switch", 5.0)]), ("ir_switch", [("ir_switch", 4.0)]),
             ("lights_on", [("lights_on", 5.0)]), ("lights_on", [("lights_on", 3.5)]),
             ("headlight", [("headlight", 3.0)]), ("headlight", [("headlight", 2.0), ("headlight", 6.0)])]
    for i, (kind, events) in enumerate(empty):
        params = camera.sample_params(rng, exposure=(0.02, 0.15), ir_prob=0.0, jpeg_quality=None)
        out.append(("empty", ClipSpec(name=f"empty{i:02d}_{kind}", scene_rgb=pool[int(rng.integers(len(pool)))],
                                      camera=params, events=events, seed=int(rng.integers(1 << 30)))))
    return out


def _key(spec: ClipSpec) -> str:
    h = hashlib.sha256(f"{CATALOGUE_VERSION}|{spec.name}|{spec.seed}|{spec.look}".encode())
    for p in spec.people:
        h.update(f"{p.identity}|{p.face_px}|{p.enter_s}|{p.leave_s}".encode())
    return h.hexdigest()[:12]


def build(cache: Path, specs: list[tuple[str, ClipSpec]], progress=None) -> list[tuple[str, ClipTruth]]:
    """Render what is not in the cache yet; returns (family, truth) for every clip."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for family, spec in specs:
        path = cache / f"{spec.name}-{_key(spec)}.mp4"
        meta = path.with_suffix(".mp4.json")
        if path.is_file() and meta.is_file():
            truth = ClipTruth.from_json(meta.read_text())
        else:
            truth = write_clip(spec, path)
        out.append((family, truth))
        if progress is not None:
            progress.update(1)
    (cache / "catalogue.json").write_text(json.dumps([(f, t.name, t.path) for f, t in out], indent=1))
    return out
