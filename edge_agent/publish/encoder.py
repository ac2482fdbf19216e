"""Events and alerts as MQTT messages: the event JSON (hashed images, sequence number, site) and
its image messages, alert JSON; signed with the HMAC key when one is configured."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from edge_agent.publish.event_json import encode_event
from edge_agent.publish.signing import canonical_json, sign
from edge_agent.publish.spool import Message
from edge_agent.publish.topics import Topics
from edge_agent.records import EnhancedEvent

MAX_OPEN_SEQ = 1000  # events whose sequence number is remembered (an event ends long before)


class MessageEncoder:
    def __init__(self, topics: Topics, qos: int, key: bytes | None,
                 jpeg_quality: int | Callable[[str], int] = 90):
        self.topics = topics
        self.qos = qos
        self.key = key
        self.jpeg_quality = jpeg_quality
        self._event_seq: OrderedDict[str, int] = OrderedDict()

    def _signed(self, doc: dict[str, Any]) -> bytes:
        return canonical_json(sign(doc, self.key) if self.key is not None else doc)

    def alert(self, camera: str | None, payload: dict[str, Any]) -> list[Message]:
        doc = {"alert_id": uuid.uuid4().hex, "ts": round(time.time(), 3), "site": self.topics.site,
               "camera": camera, **payload}
        return [Message(self.topics.alert(camera), self._signed(doc), self.qos)]

    def event(self, event: EnhancedEvent) -> list[Message]:
        """The event JSON first, then one message per image (each announced in the JSON by topic and sha256)."""
        quality = self.jpeg_quality(event.camera) if callable(self.jpeg_quality) else self.jpeg_quality
        doc, images = encode_event(event, jpeg_quality=quality)
        seq = self._next_seq(event.event_id, end=event.phase == "end")
        doc["seq"] = seq
        doc["site"] = self.topics.site
        for name, meta in doc["images"].items():
            meta["topic"] = self.topics.image(event.camera, event.event_id, seq, name)
        out = [Message(self.topics.event(event.camera), self._signed(doc), self.qos)]
        out += [Message(doc["images"][n]["topic"], data, self.qos) for n, data in images.items()]
        return out

    def _next_seq(self, event_id: str, end: bool) -> int:
        seq = self._event_seq.get(event_id, -1) + 1
        self._event_seq[event_id] = seq
        self._event_seq.move_to_end(event_id)
        if end:
            self._event_seq.pop(event_id, None)
        while len(self._event_seq) > MAX_OPEN_SEQ:
            self._event_seq.popitem(last=False)
        return seq
