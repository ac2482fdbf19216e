"""`edge-agent run --config` as a subprocess on generated night clips, with real models.

Models: the shipped models/ when models/manifest.yaml exists, else tiny real models built here.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import yaml

from edge_agent.demo import generate_night_clip

pytestmark = pytest.mark.slow

FPS = 10.0
OFF_DELAY_S = 1.0


@pytest.fixture(scope="module")
def person_clip(tmp_path_factory):
    """Static dark room 1.5 s, a person with a face walking across until 4.5 s, static to 7 s."""
    return generate_night_clip(tmp_path_factory.mktemp("clip") / "person.avi", 640, 360, FPS, 7.0, person=(1.5, 4.5))


def write_config(path: Path, models_dir: Path, out: Path, source: dict, **extra) -> Path:
    data = {
        "site": "lab",
        "cameras": [
            {
                "name": "cam1",
                "source": source,
                "motion": {"threshold": 12, "off_delay_s": OFF_DELAY_S},
                "snapshots": {"interval_s": 0.5},
            }
        ],
        "models": {"dir": str(models_dir)},
        "pipeline": {"stats_interval_s": 1},
        "publish": {"sink": "local", "local": {"dir": str(out)}},
        "api": {"enabled": False},
        "state_dir": str(path.parent / "state"),
        **extra,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def agent_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "edge_agent", "run", "--config", str(config)]


def event_docs(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) | {"_dir": str(p.parent)} for p in sorted(out.rglob("event-*.json"))]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_events_only_while_motion_lasts_with_enhanced_snapshot_and_sr_face(tmp_path, models_dir, person_clip):
    out = tmp_path / "events"
    cfg = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(person_clip.path)})
    proc = subprocess.run(agent_cmd(cfg), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]

    docs = event_docs(out)
    assert docs, "no events were written"
    first, last = person_clip.person_frames
    latest_allowed = last + int(OFF_DELAY_S * FPS) + 2  # the gate's off-delay after the person left
    by_event: dict[str, list[dict]] = {}
    for d in docs:
        by_event.setdefault(d["event_id"], []).append(d)
        if d["phase"] != "end":
            assert first <= d["frame_seq"] <= latest_allowed, (d["phase"], d["frame_seq"], first, last)
    assert len(by_event) <= 2  # one walk: one motion event (at most one split)
    for event_id, msgs in by_event.items():
        phases = [m["phase"] for m in msgs]
        assert phases.count("new") == 1 and phases.count("end") == 1, phases
        end = next(m for m in msgs if m["phase"] == "end")
        assert end["ended_at"] >= end["started_at"]
        folder = Path(msgs[0]["_dir"])
        enhanced = [m for m in msgs if m["enhanced"]]
        assert enhanced, f"event {event_id} has no enhanced snapshot"
        for m in msgs:
            for name, meta in m["images"].items():
                assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == meta["sha256"]
        sr_faces = [(m, f) for m in msgs for f in m["faces"] if f["super_resolved"]]
        assert sr_faces, f"event {event_id} has no super-resolved face crop"
        m, f = sr_faces[0]
        crop = cv2.imread(str(folder / f["crop"]))
        sr = cv2.imread(str(folder / f["sr"]))
        assert sr.shape[0] >= 2 * crop.shape[0] and sr.shape[1] >= 2 * crop.shape[1]
        assert {x["name"] for x in m["models"]} >= {"lowlight", "face_sr"}
    motion = jsonl(out / "motion.jsonl")
    assert [x["active"] for x in motion] == [True, False] * len(by_event)
    final = jsonl(out / "stats.jsonl")[-1]["stats"]
    assert final["frames"] == person_clip.frames and final["motion_events"] == len(by_event)
    assert final["events_published"] == len(docs) and final["errors"] == 0


def test_a_lighting_jump_alone_yields_no_event(tmp_path, models_dir):
    clip = generate_night_clip(tmp_path / "lights.avi", 640, 360, FPS, 5.0, person=None, light_jump_at=2.0)
    out = tmp_path / "events"
    cfg = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(clip.path)})
    proc = subprocess.run(agent_cmd(cfg), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert event_docs(out) == []
    assert jsonl(out / "motion.jsonl") == []
    final = jsonl(out / "stats.jsonl")[-1]["stats"]
    assert final["frames"] == clip.frames and final["relights"] >= 1 and final["motion_events"] == 0


def test_sigterm_stops_cleanly_and_flushes_the_open_event(tmp_path, models_dir, person_clip):
    out = tmp_path / "events"
    cfg = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(person_clip.path), "loop": True})
    proc = subprocess.Popen(agent_cmd(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        while not list(out.rglob("event-new.json")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no event within 40 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM" in err
    new_dirs = {p.parent for p in out.rglob("event-new.json")}
    end_dirs = {p.parent for p in out.rglob("event-end.json")}
    assert new_dirs == end_dirs  # the event open at shutdown was closed and written
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert jsonl(out / "motion.jsonl")[-1]["active"] is False
    assert jsonl(out / "stats.jsonl")  # final counters flushed


def test_invalid_config_exits_2_naming_the_key_and_writes_nothing(tmp_path, models_dir, person_clip):
    out = tmp_path / "events"
    cfg = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(person_clip.path)})
    text = cfg.read_text().replace("threshold: 12", "treshold: 12")
    text = text.replace("stats_interval_s: 1", "stats_interval_s: 0")
    cfg.write_text(text)
    proc = subprocess.run(agent_cmd(cfg), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "cameras.0.motion.treshold" in proc.stderr and "unknown key" in proc.stderr
    assert "pipeline.stats_interval_s" in proc.stderr and "(line " in proc.stderr
    assert not out.exists()


def test_missing_models_fall_back_to_originals_and_raise_an_alert(tmp_path, person_clip):
    out = tmp_path / "events"
    empty = tmp_path / "no_models"
    empty.mkdir()
    cfg = write_config(tmp_path / "agent.yaml", empty, out, {"file": str(person_clip.path)})
    proc = subprocess.run(agent_cmd(cfg), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(empty / "manifest.yaml") in proc.stderr  # the log names the missing file
    docs = event_docs(out)
    assert docs, "no event was published without models"
    first = next(d for d in docs if d["phase"] == "new")
    assert "low_light" not in first["stages"]
    assert any(e.startswith("low_light: model unavailable") for e in first["errors"])
    assert (Path(first["_dir"]) / "original.jpg").is_file()
    alerts = jsonl(out / "alerts.jsonl")
    failed = {a.get("details", {}).get("stage") for a in alerts if a.get("type") == "model_failed"}
    assert failed == {"low_light", "face_sr", "face_detect"}, alerts  # the detector falls back to LBP


def test_sigkill_mid_event_then_the_next_run_closes_it_and_raises_agent_restarted(tmp_path, models_dir, person_clip):
    out, state = tmp_path / "events", tmp_path / "state"
    looping = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(person_clip.path), "loop": True})
    proc = subprocess.Popen(agent_cmd(looping), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        while not (list(out.rglob("event-new.json")) and (state / "open_events.json").is_file()
                   and json.loads((state / "open_events.json").read_text() or "{}")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no open event within 40 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (state / "running").is_file()
    left = json.loads((state / "open_events.json").read_text())
    killed = [d for d in event_docs(out) if d["event_id"] in left]
    assert killed and not [d for d in killed if d["phase"] == "end"]

    once = write_config(tmp_path / "agent.yaml", models_dir, out, {"file": str(person_clip.path)})
    proc2 = subprocess.run(agent_cmd(once), capture_output=True, text=True, timeout=90)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    for event_id, rec in left.items():
        end = json.loads(next(out.rglob(f"{event_id}/event-end.json")).read_text())
        assert end["end_reason"] == "agent_restarted" and end["ended_at"] == round(rec["last_ts"], 3)
    others = [d for d in event_docs(out) if d["phase"] == "end" and d["event_id"] not in left]
    assert others and all("end_reason" not in d for d in others)  # the second run's own events
    restarted = [a for a in jsonl(out / "alerts.jsonl") if a.get("type") == "agent_restarted"]
    assert restarted[0]["phase"] == "start" and restarted[0]["details"]["open_events_closed"] == len(left)
    assert not (state / "running").exists() and json.loads((state / "open_events.json").read_text()) == {}
