"""Validation of the live-tuning commands that arrive on <prefix>/<site>/<camera>/set/<key>.

The payload is plain text (ON/OFF, true/false, 1/0 for switches; a number for the rest), or the
same value as JSON. A bad value is refused with a message naming the key and the allowed range.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

COMMANDS: dict[str, TypeAdapter] = {
    "enabled": TypeAdapter(bool),
    "face_sr": TypeAdapter(bool),
    "motion_sensitivity": TypeAdapter(Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]),
    "low_light_ratio": TypeAdapter(Annotated[float, Field(ge=1.0, le=20.0, allow_inf_nan=False)]),
}
MAX_PAYLOAD = 64


class CommandError(ValueError):
    pass


def parse_command(key: str, payload: bytes) -> bool | float:
    """The validated value of a command; raises CommandError with a readable reason."""
    adapter = COMMANDS.get(key)
    if adapter is None:
        raise CommandError(f"unknown setting {key!r}; known: {', '.join(sorted(COMMANDS))}")
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"{key}: payload too long ({len(payload)} bytes)")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CommandError(f"{key}: payload is not UTF-8 text") from exc
    value: Any = text
    if text[:1] in ('"', "{", "[") or text in ("true", "false"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
    if isinstance(value, dict) and set(value) == {"value"}:
        value = value["value"]
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise CommandError(f"{key}: {text!r} refused: {reason}") from exc
