"""The camera settings that can be changed by a single command (MQTT <camera>/set/<key>), in one
table. Their types and bounds are read from the schema's fields, so the commands, the Home
Assistant entities and the config file can never disagree; whether a change applies live is
config/live.py's answer for the setting's config key.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from edge_agent.config.schema import CameraConfig


@dataclass(frozen=True)
class Command:
    key: str  # the topic level: <camera>/set/<key>
    path: tuple[str, ...]  # the field inside a camera's config
    label: str  # what a user reads (Home Assistant entity name)
    step: float | None = None  # a number's step on a slider

    @property
    def config_key(self) -> str:
        """The dotted config key below cameras.<name> (for config/live.py)."""
        return ".".join(self.path)


COMMANDS: tuple[Command, ...] = (
    Command("enabled", ("enabled",), "Enabled"),
    Command("motion_sensitivity", ("motion", "sensitivity"), "Motion sensitivity", step=0.05),
    Command("low_light_ratio", ("low_light", "ratio"), "Low-light brightness ratio", step=0.5),
    Command("face_sr", ("faces", "super_resolve"), "Face super-resolution"),
)
BY_KEY: dict[str, Command] = {c.key: c for c in COMMANDS}
KEYS: tuple[str, ...] = tuple(BY_KEY)


def field_info(cmd: Command) -> FieldInfo:
    """The schema field a command sets."""
    model: type[BaseModel] = CameraConfig
    info: FieldInfo | None = None
    for i, name in enumerate(cmd.path):
        info = model.model_fields[name]
        if i < len(cmd.path) - 1:
            model = info.annotation  # a section: a nested model
    assert info is not None
    return info


@cache
def adapter(key: str) -> TypeAdapter:
    """Validates a command's value exactly as the schema validates the field."""
    info = field_info(BY_KEY[key])
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(typing.Annotated[(info.annotation, *info.metadata)])


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (or the annotation itself), Annotated kept."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _base(annotation: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return base, meta
    return annotation, []


def _bounds(meta: list[Any]) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in meta:
        for item in (m.metadata if isinstance(m, FieldInfo) else [m]):
            if isinstance(item, (annotated_types.Ge, annotated_types.Gt)):
                lo = float(getattr(item, "ge", getattr(item, "gt", None)))
            if isinstance(item, (annotated_types.Le, annotated_types.Lt)):
                hi = float(getattr(item, "le", getattr(item, "lt", None)))
    return lo, hi


@dataclass(frozen=True)
class Shape:
    """What kind of value a command takes: a switch (bool), a number in [min, max], and the
    words it also accepts (low_light_ratio: "auto")."""

    kind: str  # "switch" | "number"
    min: float | None = None
    max: float | None = None
    words: tuple[str, ...] = ()


@cache
def shape(key: str) -> Shape:
    info = field_info(BY_KEY[key])
    kind, lo, hi, words = "", None, None, []
    for member in _members(info.annotation):
        base, meta = _base(member)
        if base is bool:
            kind = "switch"
        elif base in (int, float):
            kind = "number"
            lo, hi = _bounds(meta + list(info.metadata))
        elif typing.get_origin(base) is Literal:
            words += [str(a) for a in typing.get_args(base)]
    if not kind:
        raise TypeError(f"command {key}: unsupported field type {info.annotation}")
    return Shape(kind, lo, hi, tuple(words))


def value_of(cam: CameraConfig, key: str) -> Any:
    value: Any = cam
    for name in BY_KEY[key].path:
        value = getattr(value, name)
    return value


def command_values(cam: CameraConfig) -> dict[str, Any]:
    """The current value of every command setting of a camera."""
    return {c.key: value_of(cam, c.key) for c in COMMANDS}


def state_text(value: Any) -> str:
    """A setting's value as its retained MQTT state says it: ON/OFF, a number, or a word."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)
