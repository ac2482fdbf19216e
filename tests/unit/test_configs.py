"""The shipped configs validate with the agent's own schema; the demo fills in its paths."""

from __future__ import annotations

import yaml

from edge_agent.config.loader import load_config, parse_config
from edge_agent.demo import demo_config_data


def test_example_config_validates_and_shows_every_section(repo_root):
    cfg = load_config(repo_root / "configs" / "agent.example.yaml")
    assert [c.name for c in cfg.cameras] == ["front_door", "yard"]
    door = cfg.camera("front_door")
    assert door.source.url.startswith("rtsp://") and door.motion.zones[0].name == "doorway"
    assert door.motion.masks and cfg.publish.sink == "local"
    text = (repo_root / "configs" / "agent.example.yaml").read_text()
    for key in ("luma_threshold", "super_resolve", "queue_size", "backend", "jpeg_quality", "mqtt:", "password_hash"):
        assert key in text


def _field_names(model, seen=None) -> set[str]:
    """Every field name of a pydantic model and the models nested in it."""
    import typing

    from pydantic import BaseModel

    seen = set() if seen is None else seen
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        stack = [field.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                names |= _field_names(t, seen)
            stack.extend(typing.get_args(t))
    return names


def test_example_config_names_every_key_of_the_schema(repo_root):
    from edge_agent.config.schema import AgentConfig

    text = (repo_root / "configs" / "agent.example.yaml").read_text()
    missing = sorted(n for n in _field_names(AgentConfig) if f"{n}:" not in text)
    assert not missing, f"configs/agent.example.yaml does not show: {missing}"


def test_demo_config_validates(repo_root):
    cfg = load_config(repo_root / "configs" / "demo.yaml")
    assert cfg.cameras[0].source.file is not None and cfg.cameras[0].source.loop is False
    assert cfg.api.enabled is False and cfg.publish.sink == "local"


def test_demo_fills_clip_output_and_models(tmp_path):
    data = demo_config_data(tmp_path / "clip.avi", tmp_path / "out", tmp_path / "models")
    cfg = parse_config(yaml.safe_dump(data))
    assert cfg.cameras[0].source.file == tmp_path / "clip.avi"
    assert cfg.publish.local.dir == tmp_path / "out" and cfg.models.dir == tmp_path / "models"
