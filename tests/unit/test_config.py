from __future__ import annotations

import pytest

from edge_agent.config.loader import ConfigError, dump_config, parse_config

GOOD = """
site: lab
cameras:
  - name: door
    source: {file: clip.mp4, loop: true}
    motion:
      threshold: 30
      zones:
        - name: entry
          points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]
"""


def test_valid_config_parses_with_defaults():
    cfg = parse_config(GOOD)
    cam = cfg.camera("door")
    assert cam.motion.threshold == 30
    assert cam.motion.frame_height == 180
    assert cam.low_light.ratio == "auto"
    assert cfg.publish.sink == "local"


def test_unknown_key_is_named_with_its_line():
    text = GOOD.replace("threshold: 30", "treshold: 30")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "agent.yaml")
    problem = "\n".join(exc.value.problems)
    assert "cameras.0.motion.treshold" in problem
    assert "line 7" in problem
    assert "unknown key" in problem


def test_out_of_bounds_value_is_refused():
    with pytest.raises(ConfigError) as exc:
        parse_config(GOOD.replace("threshold: 30", "threshold: 900"))
    assert "cameras.0.motion.threshold" in str(exc.value)


def test_zone_point_outside_unit_square_is_refused():
    with pytest.raises(ConfigError, match="zones"):
        parse_config(GOOD.replace("[0.5, 0.9]", "[1.5, 0.9]"))


def test_source_needs_exactly_one_kind():
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config(GOOD.replace("{file: clip.mp4, loop: true}", "{file: a.mp4, url: 'rtsp://x/y'}"))


def test_duplicate_camera_names_are_refused():
    text = GOOD + "  - name: door\n    source: {device: 0}\n"
    with pytest.raises(ConfigError, match="unique"):
        parse_config(text)


def test_broken_yaml_reports_line():
    with pytest.raises(ConfigError, match="line"):
        parse_config("site: lab\ncameras: [\n")


def test_dump_round_trips():
    cfg = parse_config(GOOD)
    again = parse_config(dump_config(cfg))
    assert again == cfg


def test_secret_survives_file_round_trip_but_not_repr():
    text = GOOD + "publish:\n  sink: mqtt\n  mqtt: {host: broker, password: hunter2}\n"
    cfg = parse_config(text)
    assert "hunter2" not in repr(cfg)
    assert "hunter2" in dump_config(cfg)


def _alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases each (~4e8 leaves) in well under 1 kB."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("cameras: [{name: door, source: {file: clip.mp4}}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_without_blowing_memory():
    import time
    import tracemalloc

    text = _alias_bomb()
    assert len(text.encode()) < 600
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(ConfigError) as err:
            parse_config(text, "bomb.yaml")
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert "bomb.yaml" in msg and "aliases" in msg and "line 1" in msg
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB traced"
    assert elapsed < 5.0


def test_anchors_and_aliases_are_refused_with_their_line():
    text = GOOD + "extra: &x {threshold: 3}\n"
    with pytest.raises(ConfigError, match=r"line 11.*anchors and aliases"):
        parse_config(text)
    text = GOOD.replace("threshold: 30", "threshold: *t")
    with pytest.raises(ConfigError, match=r"line 7.*anchors and aliases"):
        parse_config(text)
