"""The live-tuning commands that arrive on <prefix>/<site>/<camera>/set/<key>: parsing and routing.

Which keys exist, their types and bounds come from config/commands.py (read from the schema). The
payload is plain text (ON/OFF, true/false, 1/0 for switches; a number, or a word the field accepts
such as `auto`, for the rest), or the same value as JSON. A bad value is refused with a message
naming the key and the allowed range. Every command is answered on .../set/<key>/result.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from edge_agent.config import commands as table
from edge_agent.publish.spool import Message
from edge_agent.publish.topics import Topics, check_segment

log = logging.getLogger(__name__)
MAX_PAYLOAD = 64
_SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}


class CommandError(ValueError):
    pass


@dataclass
class CommandOutcome:
    """What applying a command did: an error (nothing changed), or applied, with the keys that
    only take effect after a restart (config/live.py)."""

    error: str | None = None
    restart_required: list[str] = field(default_factory=list)


CommandHandler = Callable[[str, str, Any], CommandOutcome]


def parse_command(key: str, payload: bytes) -> Any:
    """The validated value of a command; raises CommandError with a readable reason."""
    if key not in table.BY_KEY:
        raise CommandError(f"unknown setting {key!r}; known: {', '.join(table.KEYS)}")
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
    shape = table.shape(key)
    if shape.kind == "switch" and isinstance(value, str):
        value = _SWITCH_WORDS.get(value.lower(), value)
    elif shape.kind == "number" and isinstance(value, str) and value not in shape.words:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and shape.kind == "number" and value != value:
        raise CommandError(f"{key}: {text!r} refused: not a number")
    try:
        return table.adapter(key).validate_python(value)
    except ValidationError as exc:
        reasons = "; ".join(dict.fromkeys(e["msg"] for e in exc.errors()))
        raise CommandError(f"{key}: {text!r} refused: {reasons} ({_allowed(key)})") from exc


def _allowed(key: str) -> str:
    shape = table.shape(key)
    if shape.kind == "switch":
        return "expected ON or OFF"
    words = f" or {', '.join(shape.words)}" if shape.words else ""
    return f"expected a number from {shape.min:g} to {shape.max:g}{words}"


class CommandRouter:
    """Turns a command message into a call of the agent's handler and a result message.
    The composition root builds it with the agent's handler and gives it to the publisher."""

    def __init__(self, topics: Topics, cameras: list[str], handler: CommandHandler | None):
        self.topics = topics
        self.cameras = list(cameras)
        self.handler = handler

    @property
    def topic_filter(self) -> str:
        return self.topics.command_filter

    def handle(self, topic: str, payload: bytes, retained: bool) -> Message | None:
        """The result message for a command topic; None for anything that is not a command."""
        parts = topic[len(self.topics.base) + 1 :].split("/")
        if not topic.startswith(self.topics.base + "/") or len(parts) != 3 or parts[1] != "set":
            return None
        camera, key = parts[0], parts[2]
        if retained:
            log.warning("ignoring retained command %s (commands must not be retained)", topic)
            return None
        value: Any = None
        outcome = CommandOutcome()
        try:
            if camera not in self.cameras:
                raise CommandError(f"unknown camera {camera!r}")
            value = parse_command(key, payload)
            if self.handler is None:
                raise CommandError("this agent does not accept live commands")
            outcome = self.handler(camera, key, value)
        except CommandError as exc:
            outcome = CommandOutcome(error=str(exc))
        except Exception as exc:
            log.exception("command %s=%r failed", topic, value)
            outcome = CommandOutcome(error=f"internal error: {type(exc).__name__}")
        if outcome.error:
            log.warning("command %s refused: %s", topic, outcome.error)
        else:
            log.info("command %s/%s = %r applied%s", camera, key, value,
                     f" (after a restart: {', '.join(outcome.restart_required)})" if outcome.restart_required else "")
        result = {"camera": camera, "key": key, "value": value, "ok": outcome.error is None,
                  "error": outcome.error, "restart_required": outcome.restart_required,
                  "ts": round(time.time(), 3)}
        reply = self.topics.command_result(check_segment(camera, "camera"), check_segment(key, "setting"))
        return Message(reply, json.dumps(result).encode(), 1, False)
