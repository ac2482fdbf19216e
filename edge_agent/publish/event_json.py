"""One event as a JSON-ready dict plus its encoded images, shared by every publisher.

encode_event(event) -> (doc, images): `images` maps a file name (original.jpg, enhanced.jpg,
face_<n>.png, face_<n>_sr.png) to its encoded bytes; `doc["images"]` lists the same names with
the sha256 of those exact bytes, so a receiver can check that an image belongs to its event.
Frames are JPEG (the camera's quality), face crops PNG (lossless, they are small).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_agent.media import encode_jpeg, encode_png, iso_utc, sha256_hex
from edge_agent.records import EnhancedEvent

SCHEMA_VERSION = 1


def _box(values) -> list[float]:
    return [round(float(v), 5) for v in values]


def encode_event(
    event: EnhancedEvent, jpeg_quality: int = 90, image_prefix: str = ""
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Build the event document and encode its images.

    image_prefix is put in front of every image name (a sink that keeps several updates of one
    event in one folder uses it); the names in the document always match the keys of `images`.
    """
    images: dict[str, bytes] = {}
    meta: dict[str, dict[str, Any]] = {}

    def add(name: str, data: bytes, image: np.ndarray, enhanced: bool, role: str) -> str:
        name = image_prefix + name
        images[name] = data
        meta[name] = {
            "role": role,
            "sha256": sha256_hex(data),
            "bytes": len(data),
            "content_type": "image/jpeg" if name.endswith(".jpg") else "image/png",
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "enhanced": enhanced,
        }
        return name

    if event.original is not None:
        add("original.jpg", encode_jpeg(event.original, jpeg_quality), event.original, False, "original")
    if event.enhanced is not None:
        add("enhanced.jpg", encode_jpeg(event.enhanced, jpeg_quality), event.enhanced, True, "enhanced")

    crops_from_enhanced = event.enhanced is not None
    faces = []
    for i, face in enumerate(event.faces):
        crop_name = add(f"face_{i}.png", encode_png(face.crop), face.crop, crops_from_enhanced, "face")
        sr_name = None
        if face.sr is not None:
            sr_name = add(f"face_{i}_sr.png", encode_png(face.sr), face.sr, True, "face_sr")
        faces.append(
            {
                "index": i,
                "box": [int(v) for v in face.box],
                "score": round(float(face.score), 4),
                "frame": face.frame,
                "crop": crop_name,
                "sr": sr_name,
                "super_resolved": sr_name is not None,
                "fused_frames": int(face.fused),
            }
        )

    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "phase": event.phase,
        "event_id": event.event_id,
        "camera": event.camera,
        "site": event.site,
        "ts": round(event.ts, 3),
        "ts_iso": iso_utc(event.ts),
        "started_at": round(event.started_at, 3),
        "started_at_iso": iso_utc(event.started_at),
        "ended_at": None if event.ended_at is None else round(event.ended_at, 3),
        "ended_at_iso": iso_utc(event.ended_at),
        "frame_seq": int(event.frame_seq),
        "enhanced": event.enhanced is not None,
        "stages": list(event.stages),
        "stage_ms": {k: round(float(v), 2) for k, v in event.stage_ms.items()},
        "models": [
            {"name": m.name, "version": m.version, "backend": m.backend, "precision": m.precision}
            for m in event.models
        ],
        "luma": round(float(event.luma), 2),
        "motion_boxes": [_box(b) for b in event.motion_boxes],
        "faces": faces,
        "images": meta,
        "errors": list(event.errors),
    }
    if event.end_reason is not None:  # only on an end the agent closed itself (e.g. agent_restarted)
        doc["end_reason"] = event.end_reason
    return doc, images
