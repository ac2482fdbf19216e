"""The embedded default publisher: events and images as files in a local folder.

Layout (dates are the UTC day the event started, so every phase of one event shares a folder):

    <dir>/<camera>/<YYYY-MM-DD>/<event_id>/
        original.jpg  enhanced.jpg  face_0.png  face_0_sr.png  ...   images of the 'new' phase
        event-new.json
        update-001_original.jpg  ...  event-update-001.json          each later update
        event-end.json
    <dir>/motion.jsonl  <dir>/stats.jsonl  <dir>/alerts.jsonl        one JSON object per line

Every file is written to a temporary name and renamed, and an event's JSON is written after its
images, so a reader that sees event-*.json also sees every image it names.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.media import iso_utc
from edge_agent.publish.event_json import encode_event
from edge_agent.records import EnhancedEvent

log = logging.getLogger(__name__)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class LocalDirectoryPublisher:
    """Publisher that writes into a folder. `jpeg_quality` is a number or camera -> number."""

    def __init__(self, directory: str | Path, jpeg_quality: int | Callable[[str], int] = 90):
        self.dir = Path(directory)
        self._quality = jpeg_quality
        self._lock = threading.Lock()
        self._updates: dict[str, int] = {}
        self._closed = False
        self.events_written = 0

    # ------------------------------------------------------------------ Publisher protocol
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def publish_event(self, event: EnhancedEvent) -> None:
        if self._closed:
            log.warning("publisher closed; event %s %s not written", event.event_id, event.phase)
            return
        quality = self._quality(event.camera) if callable(self._quality) else self._quality
        with self._lock:
            if event.phase == "update":
                n = self._updates.get(event.event_id, 0) + 1
                self._updates[event.event_id] = n
                prefix, json_name = f"update-{n:03d}_", f"event-update-{n:03d}.json"
            else:
                prefix, json_name = "", f"event-{event.phase}.json"
                if event.phase == "end":
                    self._updates.pop(event.event_id, None)
        doc, images = encode_event(event, jpeg_quality=quality, image_prefix=prefix)
        folder = self.event_dir(event)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in images.items():
            atomic_write(folder / name, data)
        atomic_write(folder / json_name, json.dumps(doc, indent=2).encode("utf-8"))
        with self._lock:
            self.events_written += 1

    def publish_motion(self, camera: str, active: bool) -> None:
        self._append("motion.jsonl", {"camera": camera, "active": bool(active)})

    def publish_stats(self, camera: str, stats: dict[str, Any]) -> None:
        self._append("stats.jsonl", {"camera": camera, "stats": stats})

    def publish_alert(self, camera: str | None, alert: dict[str, Any]) -> None:
        self._append("alerts.jsonl", {"camera": camera, **alert})

    def publish_settings(self, camera: str, values: dict[str, Any]) -> None:
        """The folder sink keeps no state topics: the settings are in the config (GET /api/config)."""

    def spool_status(self) -> None:
        return None  # files are written at once: no spool

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # ------------------------------------------------------------------ helpers
    def event_dir(self, event: EnhancedEvent) -> Path:
        day = time.strftime("%Y-%m-%d", time.gmtime(event.started_at))
        return self.dir / event.camera / day / event.event_id

    def _append(self, name: str, record: dict[str, Any]) -> None:
        if self._closed:
            return
        now = time.time()
        line = json.dumps({"ts": round(now, 3), "ts_iso": iso_utc(now), **record}, default=str) + "\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            # one write() of one line on an O_APPEND file: lines never interleave
            with open(self.dir / name, "a", encoding="utf-8") as f:
                f.write(line)
