"""What the publisher sends as state, not history: per camera the motion state, the stats and the
live settings, the Home Assistant discovery configs, and the command results waiting to go out.
Only the latest value of each is kept; everything is marked to send again on every connect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from edge_agent.config.commands import state_text
from edge_agent.publish import discovery
from edge_agent.publish.spool import Message
from edge_agent.publish.topics import Topics


class StateCache:
    def __init__(self, topics: Topics, cameras: list[str], *, stats_retain: bool,
                 discovery_prefix: str | None, sw_version: str = ""):
        self.topics = topics
        self.cameras = cameras
        self.stats_retain = stats_retain
        self.discovery_prefix = discovery_prefix  # None: no Home Assistant discovery
        self.sw_version = sw_version
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}  # "motion:<cam>", "stats:<cam>", "settings:<cam>"
        self._dirty: set[str] = set()  # those keys and "discovery"
        self._replies: list[Message] = []

    def set(self, kind: str, camera: str, value: Any) -> None:
        with self._lock:
            self._values[f"{kind}:{camera}"] = value
            self._dirty.add(f"{kind}:{camera}")

    def reply(self, message: Message) -> None:
        with self._lock:
            self._replies.append(message)

    def mark_all(self) -> None:
        """A new connection: every value (and discovery) is sent again."""
        with self._lock:
            self._dirty |= set(self._values)
            if self.discovery_prefix is not None:
                self._dirty.add("discovery")

    def mark_discovery(self) -> None:
        if self.discovery_prefix is not None:
            with self._lock:
                self._dirty.add("discovery")

    def take(self, mqtt_status: Callable[[], dict[str, Any]]) -> tuple[list[Message], Callable[[], None]]:
        """The messages to send now, and an undo that keeps them for the next connection if
        sending fails (newer values set meanwhile win)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            replies, self._replies = self._replies, []
            values = dict(self._values)
        messages = list(replies)
        for key in sorted(dirty):
            messages += self._messages(key, values, mqtt_status)

        def undo() -> None:
            with self._lock:
                self._dirty |= dirty
                self._replies = replies + self._replies

        return messages, undo

    def _messages(self, key: str, values: dict[str, Any], mqtt_status) -> list[Message]:
        if key == "discovery":
            return discovery.discovery_messages(self.topics, self.cameras, self.discovery_prefix, self.sw_version)
        kind, cam = key.split(":", 1)
        value = values[key]
        if kind == "motion":
            return [Message(self.topics.motion(cam), b"ON" if value else b"OFF", 1, True)]
        if kind == "stats":
            doc = {**value, "ts": round(time.time(), 3), "mqtt": mqtt_status()}
            return [Message(self.topics.stats(cam), json.dumps(doc, sort_keys=True, default=str).encode(), 0,
                            self.stats_retain)]
        if kind == "settings":
            return [Message(self.topics.setting_state(cam, k), state_text(v).encode(), 1, True)
                    for k, v in sorted(value.items())]
        raise ValueError(f"unknown state {key!r}")
