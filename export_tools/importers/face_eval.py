"""A quick, seeded face-recall benchmark for choosing and gating face detectors (toolchain only).

Frames: 1280x720 scenes from ../shared/datasets/train_natural with 1-3 real faces pasted in
(dev_faces photos and scikit-image's astronaut, soft elliptical masks), face widths drawn from
24-112 px. Ground truth: the box a reference detector (the shipped CenterFace, FP32) finds on
the full-resolution clean photo (each source photo holds one face, checked by eye), scaled and
moved with the paste; at 24-112 px every candidate sees the face far smaller than the reference. Night versions come from export_tools.data.lowlight.synth_night with 2-15 % exposure.
This is not the product benchmark (benchmarks/night_yield.py runs the real agent on clips); it
is what the importer's INT8 gate and the candidate comparison measure.

A detector here is any callable (bgr, regions) -> [(x, y, w, h, score)]. Recall counts ground
truth faces matched at IoU >= 0.3; false faces are detections matching no face.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.enhance.face_cnn import box_iou
from export_tools.data.images import face_paths, read_rgb, train_paths
from export_tools.data.lowlight import NightParams, synth_night

FRAME_W, FRAME_H = 1280, 720
FACE_WIDTHS = (24, 112)
NIGHT = NightParams(exposure=(0.02, 0.15))
MATCH_IOU = 0.3
SIZE_BUCKETS = ((0, 40), (40, 10_000))

Detect = Callable[[np.ndarray, list | None], list]


@dataclass
class Frame:
    clean: np.ndarray  # BGR
    night: np.ndarray  # BGR
    faces: list[tuple[int, int, int, int]]  # ground truth x, y, w, h
    regions: list[tuple[float, float, float, float]] = field(default_factory=list)  # person boxes


def source_faces(reference: Detect) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """(RGB photo, its one face box) for every dev face and the astronaut; `reference` finds it."""
    import skimage.data

    photos = [read_rgb(p) for p in face_paths()] + [skimage.data.astronaut()]
    out = []
    for rgb in photos:
        found = reference(np.ascontiguousarray(rgb[:, :, ::-1]), None)
        if found:
            x, y, w, h = (float(v) for v in max(found, key=lambda b: b[4])[:4])
            out.append((rgb, (x, y, w, h)))
    return out


def _paste(scene: np.ndarray, rgb: np.ndarray, box, face_w: int, rng) -> tuple[tuple, tuple] | None:
    """Paste the head around `box` scaled to face_w into scene (in place); GT box and person box."""
    x, y, w, h = box
    f = face_w / w
    # the head: the face box grown by 60 % on every side, clipped to the photo
    hx0, hy0 = max(0, int(x - 0.6 * w)), max(0, int(y - 0.6 * h))
    hx1, hy1 = min(rgb.shape[1], int(x + 1.6 * w)), min(rgb.shape[0], int(y + 1.6 * h))
    head = cv2.resize(rgb[hy0:hy1, hx0:hx1], None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    ph, pw = head.shape[:2]
    if ph >= FRAME_H or pw >= FRAME_W:
        return None
    px, py = int(rng.integers(0, FRAME_W - pw)), int(rng.integers(0, max(1, FRAME_H - ph - 5 * face_w)))
    mask = np.zeros((ph, pw), np.float32)
    cv2.ellipse(mask, (pw // 2, ph // 2), (max(1, pw // 2 - 1), max(1, ph // 2 - 1)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, pw / 20))[:, :, None]
    roi = scene[py:py + ph, px:px + pw].astype(np.float32)
    scene[py:py + ph, px:px + pw] = (mask * head + (1 - mask) * roi).astype(np.uint8)
    gt = (int(round(px + (x - hx0) * f)), int(round(py + (y - hy0) * f)), int(round(w * f)), int(round(h * f)))
    # a person-sized motion box: 3 face widths wide, 8 face heights tall, from the top of the head
    bw, bh = 3 * gt[2], 8 * gt[3]
    bx, by = gt[0] + gt[2] / 2 - bw / 2, gt[1] - 0.3 * gt[3]
    person = (max(0.0, bx / FRAME_W), max(0.0, by / FRAME_H),
              min(bw, FRAME_W - max(bx, 0)) / FRAME_W, min(bh, FRAME_H - max(by, 0)) / FRAME_H)
    return gt, person


def build_frames(reference: Detect, n_frames: int = 30, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    faces = source_faces(reference)
    scenes = [read_rgb(p) for p in train_paths()]
    frames = []
    for _ in range(n_frames):
        bg = scenes[int(rng.integers(len(scenes)))]
        scene = np.ascontiguousarray(cv2.resize(bg, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC))
        gts, persons = [], []
        for _k in range(int(rng.integers(1, 4))):
            rgb, box = faces[int(rng.integers(len(faces)))]
            face_w = int(round(np.exp(rng.uniform(np.log(FACE_WIDTHS[0]), np.log(FACE_WIDTHS[1])))))
            placed = _paste(scene, rgb, box, face_w, rng)
            if placed and all(box_iou(placed[0], g) == 0 for g in gts):
                gts.append(placed[0])
                persons.append(placed[1])
        night, _ = synth_night(scene, rng, NIGHT)
        frames.append(Frame(scene[:, :, ::-1].copy(), night[:, :, ::-1].copy(), gts, persons))
    return frames


def score(detect: Detect, frames: list[Frame], variant: str, use_regions: bool) -> dict:
    """Recall overall and per size bucket, and false faces per frame, of one detector."""
    hits = {b: 0 for b in SIZE_BUCKETS}
    totals = {b: 0 for b in SIZE_BUCKETS}
    false = 0
    for fr in frames:
        img = fr.clean if variant == "clean" else fr.night
        found = detect(img, fr.regions if use_regions else None)
        used = set()
        for gt in fr.faces:
            bucket = next(b for b in SIZE_BUCKETS if b[0] <= gt[2] < b[1])
            totals[bucket] += 1
            best = max(((box_iou(gt, d), i) for i, d in enumerate(found) if i not in used), default=(0.0, -1))
            if best[0] >= MATCH_IOU:
                hits[bucket] += 1
                used.add(best[1])
        false += len(found) - len(used)
    n = sum(totals.values())
    out = {"recall": sum(hits.values()) / max(n, 1), "faces": n,
           "false_per_frame": false / max(len(frames), 1)}
    for b in SIZE_BUCKETS:
        out[f"recall_{b[0]}_{b[1] if b[1] < 10_000 else 'up'}"] = hits[b] / max(totals[b], 1)
        out[f"faces_{b[0]}_{b[1] if b[1] < 10_000 else 'up'}"] = totals[b]
    return out
