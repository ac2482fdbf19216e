"""Snapshots, try-enhancement uploads, health and Prometheus metrics."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
from agent_impl import night_frame


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_latest_snapshots_are_jpeg(client, auth_headers, agent):
    r = client.get("/api/cameras/door/snapshot/original", headers=auth_headers)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == (180, 320, 3)
    orig = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    enh = client.get("/api/cameras/door/snapshot/enhanced", headers=auth_headers).content
    assert cv2.imdecode(np.frombuffer(enh, np.uint8), cv2.IMREAD_COLOR).mean() > orig.mean() + 20
    agent.latest_snapshots["yard"]["enhanced"] = None
    assert client.get("/api/cameras/yard/snapshot/enhanced", headers=auth_headers).status_code == 404
    assert client.get("/api/cameras/nope/snapshot/original", headers=auth_headers).status_code == 404
    assert client.get("/api/cameras/door/snapshot/thermal", headers=auth_headers).status_code == 422


def test_try_enhancement_png_and_jpeg(client, auth_headers):
    img = night_frame(200, 120)
    for name, data, mime in (
        ("n.png", png_bytes(img), "image/png"),
        ("n.jpg", cv2.imencode(".jpg", img)[1].tobytes(), "image/jpeg"),
    ):
        r = client.post("/api/enhance", files={"image": (name, data, mime)}, headers=auth_headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        out = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert out.shape == img.shape and out.mean() > img.mean() + 20


def _png_header_only(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_bad_images_get_400_naming_the_problem(client, auth_headers):
    good = png_bytes(night_frame(64, 64))
    cases = {
        b"": "empty upload",
        b"GIF89a....": "not a PNG or JPEG",
        good[:40]: "corrupt or truncated PNG",
        _png_header_only(60000, 60000): "image too large: 60000x60000",
        b"\xff\xd8\xff\xe0\x00\x10JFIF": "truncated JPEG",
    }
    for data, message in cases.items():
        r = client.post("/api/enhance", files={"image": ("x", data, "image/png")}, headers=auth_headers)
        assert r.status_code == 400, (message, r.text)
        assert message in r.json()["detail"]
    r = client.post("/api/enhance", data={"other": "1"}, headers=auth_headers)
    assert r.status_code == 422


def test_body_over_limit_is_refused_by_content_length(client, auth_headers, config_path):
    before = config_path.read_bytes()
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (1024 * 1024 + 10)  # api.max_body_mb is 1 in the test config
    r = client.post("/api/enhance", files={"image": ("big.png", big, "image/png")}, headers=auth_headers)
    assert r.status_code == 413 and "api.max_body_mb" in r.json()["detail"]
    r = client.put(
        "/api/config",
        content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={**auth_headers, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert config_path.read_bytes() == before


def test_health(client, auth_headers, agent):
    h = client.get("/api/health", headers=auth_headers).json()
    # sources not connected yet: the box answers, but says it is degraded
    assert h["status"] == "degraded" and h["site"] == "lab" and h["cameras"] == {"door": False, "yard": False}
    assert h["read_only"] is False
    for st in agent.stats.values():
        st.set_state(connected=True)
    h = client.get("/api/health", headers=auth_headers).json()
    assert h["status"] == "ok" and h["cameras"] == {"door": True, "yard": True} and h["alerts"] == []


def test_metrics_follow_camera_stats(client, auth_headers, agent):
    st = agent.stats["door"]
    st.inc("frames", 42)
    st.inc("motion_events", 3)
    st.inc("frames_dropped", 5)
    st.set_state(connected=True)
    text = client.get("/metrics", headers=auth_headers).text  # the first scrape attaches the latency listeners
    st.observe_ms("motion", 0.8)
    st.observe_ms("low_light", 180.0)
    r = client.get("/metrics", headers=auth_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'nightwatch_frames_total{camera="door"} 42.0' in text
    assert 'nightwatch_motion_events_total{camera="door"} 3.0' in text
    assert 'nightwatch_frames_dropped_total{camera="door"} 5.0' in text
    assert 'nightwatch_frames_total{camera="yard"} 0.0' in text
    assert 'nightwatch_camera_connected{camera="door"} 1.0' in text
    assert 'nightwatch_stage_seconds_bucket{camera="door",le="0.001",stage="motion"} 1.0' in text
    assert 'nightwatch_stage_seconds_bucket{camera="door",le="0.1",stage="low_light"} 0.0' in text
    assert 'nightwatch_stage_seconds_bucket{camera="door",le="0.25",stage="low_light"} 1.0' in text
    assert (
        'nightwatch_model_info{backend="onnxruntime",model="lowlight",precision="int8",version="1.0.0"} 1.0'
        in text
    )
