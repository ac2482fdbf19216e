"""Load the base config and the box's overlay beside it, merge them, validate the result whole.

The base (the installer's file) is read and validated alone first, exactly as before overlays
existed; its errors name the base file, the key and the line. Then the overlay (see overlay.py) is
read, its shape checked, merged over the base and the merged document validated with the same
schema (unknown keys refused). Whatever is wrong then is the overlay's doing (the base alone was
valid), so every error names the overlay file, the key as the overlay writes it (cameras by name)
and the overlay's line. A bad overlay is refused whole, never applied in part.

An overlay entry for a camera the base does not have (it was removed from the inventory) is not an
error: that entry is ignored, reported in `Layers.ignored_cameras` and logged as a warning, so a
deploy that removes a camera never fails on a box where someone once tuned it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edge_agent.config import overlay as ov
from edge_agent.config.loader import ConfigError, _line_index, _refuse_aliases, parse_config
from edge_agent.config.schema import AgentConfig

log = logging.getLogger(__name__)

RESET_HINT = "remove this file (or DELETE /api/config/overlay) to run on {base} alone"
# only the installer's file may set these (api.path_roots bounds what the API may point paths at)
BASE_ONLY_KEYS = (("api", "path_roots"),)


@dataclass(frozen=True)
class Layers:
    base_path: Path
    overlay_path: Path
    base_data: dict[str, Any]  # the base file as parsed YAML
    base: AgentConfig  # the base alone
    config: AgentConfig  # base + overlay: what the agent runs on
    overlay: dict[str, Any] = field(default_factory=dict)  # the overlay as in its file ({} if none)
    ignored_cameras: list[str] = field(default_factory=list)

    @property
    def overlay_keys(self) -> list[str]:
        return ov.leaf_keys(self.overlay)


def read_base(path: str | Path) -> tuple[dict[str, Any], AgentConfig]:
    """(parsed YAML, validated config) of the base file alone; ConfigError names the base's lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    cfg = parse_config(text, str(path))
    return yaml.safe_load(text), cfg


def read_overlay(path: str | Path) -> tuple[dict[str, Any], str]:
    """(overlay data, its text); ({}, "") when the file does not exist. Shape errors name lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ""
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    return parse_overlay(text, str(path)), text


def parse_overlay(text: str, source: str) -> dict[str, Any]:
    _refuse_aliases(text, source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping (key: value) at the top level"])
    problems = _shape_problems(data, _line_index(text))
    if problems:
        raise ConfigError(source, problems)
    return data


def _where(lines: dict[tuple, int], path: tuple) -> str:
    line = lines.get(path)
    return f" (line {line})" if line else ""


def _shape_problems(data: dict[str, Any], lines: dict[tuple, int]) -> list[str]:
    """What the merge itself needs: cameras as a list of named entries, each name once."""
    problems = []
    for section, key in BASE_ONLY_KEYS:
        if isinstance(data.get(section), dict) and key in data[section]:
            problems.append(
                f"{section}.{key}{_where(lines, (section, key))}: may be set only in the base config file"
            )
    if "cameras" not in data:
        return problems
    cams = data["cameras"]
    if not isinstance(cams, list):
        return problems + [
            f"cameras{_where(lines, ('cameras',))}: must be a list of camera entries, each with the "
            "name of a camera of the base config (the camera list itself belongs to the base)"
        ]
    seen: set[str] = set()
    for i, cam in enumerate(cams):
        where = _where(lines, ("cameras", i))
        if not isinstance(cam, dict) or not isinstance(cam.get("name"), str):
            problems.append(f"cameras.{i}{where}: each entry needs the name of a camera of the base config")
        elif cam["name"] in seen:
            problems.append(f"cameras.{cam['name']}{where}: named twice")
        else:
            seen.add(cam["name"])
    return problems


def apply_overlay(
    base_data: dict[str, Any], overlay: dict[str, Any], overlay_text: str, overlay_source: str
) -> tuple[AgentConfig, list[str]]:
    """(merged config, ignored camera names); ConfigError naming the overlay's keys and lines."""
    merged, ignored = ov.merge(base_data, overlay)
    try:
        cfg = AgentConfig.model_validate(merged)
    except ValidationError as exc:
        problems = _overlay_problems(exc, merged, overlay, _line_index(overlay_text))
        raise ConfigError(overlay_source, problems) from None
    return cfg, ignored


def _overlay_problems(
    err: ValidationError, merged: dict[str, Any], overlay: dict[str, Any], lines: dict[tuple, int]
) -> list[str]:
    """Each error of the merged document as the overlay's key (cameras by name) and line."""
    cam_names = [c.get("name") if isinstance(c, dict) else None for c in merged.get("cameras") or []]
    overlay_cams = [c.get("name") for c in overlay.get("cameras") or []]
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        shown, in_file = loc, loc
        if len(loc) >= 2 and loc[0] == "cameras" and isinstance(loc[1], int) and loc[1] < len(cam_names):
            name = cam_names[loc[1]]
            shown = ("cameras", name) + loc[2:]
            if name in overlay_cams:
                in_file = ("cameras", overlay_cams.index(name)) + loc[2:]
        probe = in_file
        while probe and probe not in lines:
            probe = probe[:-1]
        key = ".".join(str(p) for p in shown) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        problems.append(f"{key}{_where(lines, probe) if probe else ''}: {msg}")
    return problems


def load_layers(
    base_path: str | Path, overlay_path: str | Path | None = None, *, warn: bool = True
) -> Layers:
    """The base, the overlay (default: beside the base, see overlay_path_for) and their merge."""
    base_path = Path(base_path)
    overlay_path = Path(overlay_path) if overlay_path is not None else ov.overlay_path_for(base_path)
    base_data, base = read_base(base_path)
    try:
        overlay, text = read_overlay(overlay_path)
        if not overlay:
            return Layers(base_path, overlay_path, base_data, base, base)
        cfg, ignored = apply_overlay(base_data, overlay, text, str(overlay_path))
    except ConfigError as exc:  # the overlay's fault: say how to get back to the base
        raise ConfigError(exc.source, exc.problems + [RESET_HINT.format(base=base_path)]) from None
    if warn:
        for name in ignored:
            log.warning(
                "%s: camera %r is not in %s (removed from the installer's config?): its on-box changes "
                "are ignored; reset the overlay to drop them", overlay_path, name, base_path,
            )
    return Layers(base_path, overlay_path, base_data, base, cfg, overlay, ignored)
