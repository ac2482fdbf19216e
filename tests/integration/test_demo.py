"""`edge-agent demo` end to end: generated clip -> real agent -> local sink -> printed summary.

To stay short the test places a smaller clip at the demo's cache path first (the demo reuses a
cached clip); everything after that is the demo's own code path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import demo

pytestmark = pytest.mark.slow


def test_demo_writes_enhanced_events_and_says_where(tmp_path, models_dir, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NIGHTWATCH_MODELS", str(models_dir))
    clip = demo.clip_path()
    assert str(clip).startswith(str(tmp_path))
    demo.generate_night_clip(clip, 640, 360, 10.0, 6.0, person=(1.0, 4.0))
    out = tmp_path / "demo_output"
    assert demo.run_demo(out) == 0
    printed = capsys.readouterr().out
    s = demo.summarize(out)
    assert s["events"] >= 1 and s["enhanced_snapshots"] >= 1 and s["faces_super_resolved"] >= 1
    assert f"where to look: {out.resolve()}" in printed
    assert f"enhanced snapshots: {s['enhanced_snapshots']}" in printed
    assert s["event_dirs"][0] in printed
    crop, sr = s["face_pairs"][0]  # the best face's before and after are named, and exist
    assert f"before: {crop}" in printed and f"after:  {sr}" in printed
    assert Path(crop).is_file() and Path(sr).is_file()
    assert "faces found:" in printed and "the clip shows a face in" in printed


def test_demo_without_models_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NIGHTWATCH_MODELS", str(tmp_path / "nothing"))
    assert demo.run_demo(tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "nothing" / "manifest.yaml") in err and "models are missing" in err
    assert not (tmp_path / "out").exists()
