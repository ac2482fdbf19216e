"""The local directory sink and the shared event JSON: layout, hashes, atomic writes, JSON lines."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np

from edge_agent.publish.base import Publisher
from edge_agent.publish.event_json import encode_event
from edge_agent.publish.local import LocalDirectoryPublisher
from edge_agent.records import EnhancedEvent, FaceResult, ModelInfo

TS = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z


def event(phase: str = "new", with_images: bool = True) -> EnhancedEvent:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 40, (72, 128, 3), dtype=np.uint8)
    crop = rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)
    return EnhancedEvent(
        event_id="20231114T221320250Z-door-abcd1234",
        camera="door",
        site="lab",
        phase=phase,
        ts=TS + 1,
        started_at=TS,
        frame_seq=42,
        original=img if with_images else None,
        enhanced=(img * 3) if with_images else None,
        faces=[FaceResult(box=(10, 12, 16, 20), score=0.9, crop=crop, sr=cv2.resize(crop, (64, 80)))]
        if with_images
        else [],
        stages=["low_light", "face_detect", "face_sr"] if with_images else [],
        stage_ms={"low_light": 12.345},
        luma=11.2,
        motion_boxes=[(0.1, 0.2, 0.3, 0.4)],
        models=[ModelInfo("lowlight", "1.0.0", "openvino", "int8")],
        ended_at=TS + 5 if phase == "end" else None,
    )


def test_event_json_names_every_image_with_the_sha256_of_its_bytes():
    doc, images = encode_event(event(), jpeg_quality=80)
    assert set(images) == {"original.jpg", "enhanced.jpg", "face_0.png", "face_0_sr.png"}
    for name, data in images.items():
        assert doc["images"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert doc["images"][name]["bytes"] == len(data)
    assert doc["images"]["enhanced.jpg"]["enhanced"] is True
    assert doc["images"]["original.jpg"]["enhanced"] is False
    assert doc["images"]["face_0_sr.png"]["width"] == 64
    assert doc["started_at_iso"] == "2023-11-14T22:13:20.250Z"
    assert doc["models"] == [{"name": "lowlight", "version": "1.0.0", "backend": "openvino", "precision": "int8"}]
    assert doc["faces"][0] == {"index": 0, "box": [10, 12, 16, 20], "score": 0.9, "crop": "face_0.png",
                               "sr": "face_0_sr.png", "super_resolved": True, "frame": "original",
                               "fused_frames": 1}
    assert doc["enhanced"] is True and doc["frame_seq"] == 42 and doc["stage_ms"]["low_light"] == 12.35
    json.dumps(doc)  # plain JSON types only
    # JPEG quality is honoured
    _, low_q = encode_event(event(), jpeg_quality=20)
    assert len(low_q["original.jpg"]) < len(images["original.jpg"])


def test_local_sink_layout_and_atomic_files(tmp_path):
    pub = LocalDirectoryPublisher(tmp_path, jpeg_quality=lambda cam: 85)
    assert isinstance(pub, Publisher)
    pub.start()
    pub.publish_event(event("new"))
    pub.publish_event(event("update"))
    pub.publish_event(event("update"))
    pub.publish_event(event("end", with_images=False))
    folder = tmp_path / "door" / "2023-11-14" / "20231114T221320250Z-door-abcd1234"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([
        "event-new.json", "original.jpg", "enhanced.jpg", "face_0.png", "face_0_sr.png",
        "event-update-001.json", "update-001_original.jpg", "update-001_enhanced.jpg",
        "update-001_face_0.png", "update-001_face_0_sr.png",
        "event-update-002.json", "update-002_original.jpg", "update-002_enhanced.jpg",
        "update-002_face_0.png", "update-002_face_0_sr.png",
        "event-end.json",
    ])  # no temporary files left behind
    for doc_path in folder.glob("event-*.json"):
        doc = json.loads(doc_path.read_text())
        for name, meta in doc["images"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == meta["sha256"]
    assert cv2.imread(str(folder / "enhanced.jpg")).shape == (72, 128, 3)
    end = json.loads((folder / "event-end.json").read_text())
    assert end["phase"] == "end" and end["images"] == {} and end["ended_at_iso"] == "2023-11-14T22:13:25.250Z"
    assert pub.events_written == 4


def test_motion_stats_and_alerts_are_json_lines(tmp_path):
    pub = LocalDirectoryPublisher(tmp_path)
    pub.start()
    pub.publish_motion("door", True)
    pub.publish_motion("door", False)
    pub.publish_stats("door", {"frames": 10})
    pub.publish_alert(None, {"type": "disk_low"})
    pub.close()
    pub.publish_motion("door", True)  # after close: nothing
    pub.publish_event(event())
    motion = [json.loads(line) for line in (tmp_path / "motion.jsonl").read_text().splitlines()]
    assert [m["active"] for m in motion] == [True, False] and motion[0]["camera"] == "door"
    assert json.loads((tmp_path / "stats.jsonl").read_text())["stats"] == {"frames": 10}
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["type"] == "disk_low"
    assert not (tmp_path / "door").exists()
