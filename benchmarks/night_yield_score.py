"""Score what the agent published against the clips' ground truth; identify the published faces.

Everything is read from the agent's local sink (the files an integrator gets): event JSONs with
frame_seq, face boxes (the crop box, i.e. the detection grown by faces.margin), which frame each
face was found in, the crops, the super-resolved crops and the original snapshot.

Identification: dlib's ResNet face descriptor (`face-recognition-models` weights, run with
`dlib-bin`; the benchmark extra only, never on the box). The gallery is one descriptor per clean
source photo; a face is identified when its nearest gallery face is the right person and the
distance is under dlib's 0.6. The baseline is what an operator has without us: the same crop box
cut from the dark original snapshot, brightened by a gamma curve to mid-gray and upscaled x4
bicubic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

BUCKETS = ((0, 24, "<24"), (24, 40, "24-40"), (40, 64, "40-64"), (64, 10_000, ">=64"))
IOU_MATCH = 0.3
ID_DISTANCE = 0.6


def bucket(width: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= width < hi)


def iou(a, b) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def detection_box(crop_box, margin: float, width: int, height: int) -> tuple[float, float, float, float]:
    """Undo faces.margin: the detection box inside a published crop box (exact away from edges)."""
    x, y, w, h = crop_box
    dw, dh = w / (1 + 2 * margin), h / (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    if x <= 0:
        cx = x + w - dw * (1 + margin) + dw / 2
    elif x + w >= width:
        cx = x + dw * margin + dw / 2
    if y <= 0:
        cy = y + h - dh * (1 + margin) + dh / 2
    elif y + h >= height:
        cy = y + dh * margin + dh / 2
    return (cx - dw / 2, cy - dh / 2, dw, dh)


@dataclass
class Snapshot:
    camera: str
    event_id: str
    frame: int
    folder: Path
    doc: dict


def read_events(out_dir: Path) -> dict[str, list[Snapshot]]:
    """camera -> every new/update snapshot the agent published, in frame order."""
    snaps: dict[str, list[Snapshot]] = defaultdict(list)
    for path in sorted(out_dir.glob("*/*/*/event-*.json")):
        doc = json.loads(path.read_text())
        if doc.get("phase") not in ("new", "update"):
            continue
        snaps[doc["camera"]].append(Snapshot(doc["camera"], doc["event_id"], int(doc["frame_seq"]), path.parent, doc))
    for v in snaps.values():
        v.sort(key=lambda s: s.frame)
    return snaps


def image(snap: Snapshot, name: str | None) -> np.ndarray | None:
    if not name:
        return None
    img = cv2.imread(str(snap.folder / name), cv2.IMREAD_COLOR)
    return None if img is None else img[:, :, ::-1].copy()  # RGB


# --------------------------------------------------------------------------- identification


class Identifier:
    def __init__(self):
        import importlib.util

        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("install the benchmark extra: pip install -e '.[bench]' (face-recognition-models, dlib-bin)")
        models = Path(list(spec.submodule_search_locations)[0]) / "models"
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._dlib = dlib
        self.gallery: dict[str, np.ndarray] = {}

    def descriptor(self, rgb: np.ndarray, box) -> np.ndarray | None:
        x, y, w, h = (int(round(v)) for v in box)
        if w < 4 or h < 4:
            return None
        rect = self._dlib.rectangle(max(0, x), max(0, y), min(rgb.shape[1] - 1, x + w), min(rgb.shape[0] - 1, y + h))
        shape = self._shape(np.ascontiguousarray(rgb), rect)
        return np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(rgb), shape), np.float32)

    def enrol(self, identity: str, rgb_u8: np.ndarray, box) -> None:
        d = self.descriptor(rgb_u8, box)
        if d is not None:
            self.gallery[identity] = d

    def identify(self, rgb: np.ndarray, box) -> str | None:
        d = self.descriptor(rgb, box)
        if d is None or not self.gallery:
            return None
        names = list(self.gallery)
        dist = np.linalg.norm(np.stack([self.gallery[n] for n in names]) - d, axis=1)
        i = int(np.argmin(dist))
        return names[i] if dist[i] < ID_DISTANCE else None


def agent_crop(dark_rgb: np.ndarray, box, denoise: bool = True) -> np.ndarray:
    """The face box as the agent prepares it for publishing and SR: cut from the dark original,
    lifted to mid-grey (brighten_to_mid) and, with faces.denoise on, denoised (RGB uint8)."""
    from edge_agent.enhance.crop_denoise import denoise_crop
    from edge_agent.enhance.faces import brighten_to_mid

    x, y, w, h = (int(round(v)) for v in box)
    crop = brighten_to_mid(np.ascontiguousarray(dark_rgb[max(0, y) : y + h, max(0, x) : x + w]))
    return denoise_crop(crop, order="rgb") if denoise else crop


def gamma_bicubic(dark_rgb: np.ndarray, box, scale: int = 4, denoise: bool = False) -> tuple[np.ndarray, tuple]:
    """The operator's baseline: crop, gamma to mid-gray mean, bicubic x scale; box in the result.
    denoise: the agent's crop denoising between the gamma and the bicubic (what SR is up against)."""
    crop = agent_crop(dark_rgb, box, denoise)
    up = cv2.resize(crop, (crop.shape[1] * scale, crop.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    return up, (0, 0, up.shape[1], up.shape[0])


# --------------------------------------------------------------------------- scoring


@dataclass
class Tally:
    gt: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    found: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_faces: int = 0
    frames: int = 0
    sr: int = 0
    ident_ours: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    ident_base: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    ident_denoised: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # the published crop itself (before SR: fused, lifted, denoised), bicubic x4: what SR is up against
    ident_crop_bicubic: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    by_frame: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fused: list[int] = field(default_factory=list)  # frames averaged into each matched face's crop


def match_faces(truth, snap: Snapshot, margin: float) -> tuple[list[tuple], int]:
    """Greedy IoU match of one snapshot's published faces to the ground truth of its frame:
    ([(ground-truth face, (detection box, published face) or None)], published faces unmatched)."""
    dets = [(detection_box(f["box"], margin, truth.width, truth.height), f) for f in snap.doc.get("faces", [])]
    used: set[int] = set()
    pairs = []
    for g in truth.faces.get(snap.frame, []):
        best, best_iou = None, IOU_MATCH
        for j, (det, _f) in enumerate(dets):
            if j not in used and (o := iou(det, g["box"])) >= best_iou:
                best, best_iou = j, o
        if best is not None:
            used.add(best)
        pairs.append((g, None if best is None else dets[best]))
    return pairs, len(dets) - len(used)


def score_faces(truth, snaps: list[Snapshot], margin: float, tally: Tally, ident: Identifier | None,
                held_out: set[str]) -> None:
    """Match published faces to the ground truth of their frame; identify matched crops."""
    for snap in snaps:
        tally.frames += 1
        for k, v in snap.doc.get("stage_ms", {}).items():
            tally.stage_ms[k].append(float(v))
        pairs, unmatched = match_faces(truth, snap, margin)
        for g, match in pairs:
            b = bucket(g["box"][2])
            tally.gt[b] += 1
            if match is None:
                continue
            tally.found[b] += 1
            det, f = match
            tally.by_frame[f.get("frame", "?")] += 1
            tally.sr += bool(f.get("super_resolved"))
            tally.fused.append(int(f.get("fused_frames", 1)))
            if ident is None:
                continue
            _identify(snap, f, det, g, b, ident, tally, held_out)
        tally.false_faces += unmatched


def _identify(snap, f, det, g, b, ident: Identifier, tally: Tally, held_out: set[str]) -> None:
    keys = [b, "all"] + (["held-out"] if g["identity"] in held_out else [])
    crop_box = f["box"]
    inner = (det[0] - crop_box[0], det[1] - crop_box[1], det[2], det[3])  # detection inside the crop
    ours = image(snap, f.get("sr")) if f.get("sr") else image(snap, f.get("crop"))
    scale = 4 if f.get("sr") else 1
    if ours is not None:
        if ours.shape[1] != crop_box[2] * scale:  # crops larger than sr_max_input were shrunk first
            scale = ours.shape[1] / crop_box[2]
        _count(tally.ident_ours, keys, ident.identify(ours, tuple(v * scale for v in inner)) == g["identity"])
    crop = image(snap, f.get("crop")) if f.get("sr") else None
    if crop is not None:
        up = cv2.resize(crop, (crop.shape[1] * 4, crop.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
        _count(tally.ident_crop_bicubic, keys, ident.identify(up, tuple(v * 4 for v in inner)) == g["identity"])
    original = image(snap, _original_name(snap.doc))
    if original is not None:
        for denoise, counts in ((False, tally.ident_base), (True, tally.ident_denoised)):
            up, _ = gamma_bicubic(original, crop_box, denoise=denoise)
            _count(counts, keys, ident.identify(up, tuple(v * 4 for v in inner)) == g["identity"])


def _count(counts: dict[str, list[int]], keys: list[str], hit: bool) -> None:
    """One identification attempt (hit or miss) in each of the buckets keys names."""
    for k in keys:
        counts[k][0] += hit
        counts[k][1] += 1


def _original_name(doc: dict) -> str | None:
    for name, meta in doc.get("images", {}).items():
        if meta.get("role") == "original":
            return name
    return None


def passes_with_event(truth, snaps: list[Snapshot], fps: float) -> tuple[int, int]:
    """(passes that raised an event while the person was in view (+1 s), passes)."""
    frames = [s.frame for s in snaps]
    hit = sum(any(p["first"] <= fr <= p["last"] + fps for fr in frames) for p in truth.passes)
    return hit, len(truth.passes)


def event_count(snaps: list[Snapshot]) -> int:
    return len({s.event_id for s in snaps})


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f} % ({a}/{b})" if b else "n/a"
