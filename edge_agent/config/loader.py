"""Read a YAML config file and validate it whole; errors name the key and the line.

The agent's own config comes in two layers (the installer's base file and the box's overlay):
load_config merges them through layers.py; parse_config validates one document."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from edge_agent.config.schema import AgentConfig

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """The config was refused. `problems` lists one human-readable line per error."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid config {source}:\n  " + "\n  ".join(problems))


def _refuse_aliases(text: str, source: str) -> None:
    """Refuse YAML anchors and aliases (&name / *name) before anything is built from the text.

    An alias is a reference, so a few hundred bytes of nested aliases stand for billions of nodes
    ("billion laughs"); validating or line-indexing them would take gigabytes. Config files do not
    need them, so they are refused outright, scanning the event stream once (linear in the text)."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ConfigError(
                    source,
                    [
                        f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name / *name) are "
                        "not allowed in config files; write the value out in full"
                    ],
                )
    except yaml.YAMLError:
        return  # reported with its line by the full parse


def _line_index(text: str) -> dict[tuple, int]:
    """Map each key path (tuple of keys / list indexes) to its 1-based line in the YAML text."""
    index: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node, path: tuple) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                index[path + (key,)] = key_node.start_mark.line + 1
                walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    if root is not None:
        walk(root, ())
    return index


def format_validation_error(err: ValidationError, lines: dict[tuple, int] | None = None) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        if lines:
            probe = loc
            while probe and probe not in lines:
                probe = probe[:-1]
            line = lines.get(probe)
        where = f" (line {line})" if line else ""
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{key}{where}: {msg}")
    return problems


def parse_config(text: str, source: str = "<config>", model: type[M] = AgentConfig) -> M:
    """Validate YAML text with `model` (the agent's config by default); raise ConfigError naming
    every bad key and its line."""
    _refuse_aliases(text, source)
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping (key: value) at the top level"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc, _line_index(text))) from exc


def load_config(path: str | Path, model: type[M] = AgentConfig) -> M:
    """Read and validate a config file. For the agent's config (the default model) that is the
    installer's base file merged with the box's overlay beside it, when there is one
    (agent.yaml + agent.local.yaml: edge_agent/config/layers.py, docs/config-ownership.md)."""
    if model is AgentConfig:
        from edge_agent.config.layers import load_layers  # layers builds on this module

        return load_layers(path).config  # type: ignore[return-value]
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    return parse_config(text, str(path), model)


def _plain(value: Any, reveal: bool) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v, reveal) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value() if reveal else "**********"
    if isinstance(value, Path):
        return str(value)
    return value


def config_to_data(cfg: AgentConfig, reveal_secrets: bool = False) -> dict:
    """Plain dict of a config; secrets masked unless reveal_secrets (only for writing the file)."""
    return _plain(cfg.model_dump(mode="python"), reveal_secrets)


def dump_config(cfg: AgentConfig) -> str:
    """YAML text for the config file (secrets kept, so the file round-trips)."""
    return yaml.safe_dump(config_to_data(cfg, reveal_secrets=True), sort_keys=False, allow_unicode=True)
