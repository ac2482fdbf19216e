"""The MQTT topic tree, in one place (documented in docs/mqtt.md).

    <prefix>/<site>/availability                            online | offline (last will) | stopped, retained
    <prefix>/<site>/alert                                   site-level alert JSON
    <prefix>/<site>/<camera>/motion                         ON | OFF, retained
    <prefix>/<site>/<camera>/event                          event JSON (new / update / end)
    <prefix>/<site>/<camera>/image/<event_id>/<seq>/<name>  image bytes, not retained
    <prefix>/<site>/<camera>/stats                          counters JSON
    <prefix>/<site>/<camera>/alert                          camera alert JSON
    <prefix>/<site>/<camera>/set/<key>                      command in (enabled, motion_sensitivity, ...)
    <prefix>/<site>/<camera>/set/<key>/result               the command's outcome JSON
    <prefix>/<site>/<camera>/state/<key>                    the setting's current value, retained

Site-level topics have one level after the site, camera topics at least two, so a camera may be
named like a site-level leaf without any ambiguity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class TopicError(ValueError):
    pass


def check_segment(value: str, what: str) -> str:
    """A topic level (and later a folder name): letters, digits, _ . - only; never '.' or '..'."""
    if not isinstance(value, str) or not SEGMENT_RE.match(value) or value in (".", ".."):
        raise TopicError(f"invalid {what} {value!r} for a topic level")
    return value


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    def __post_init__(self) -> None:
        check_segment(self.site, "site")

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}"

    # site level
    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def site_alert(self) -> str:
        return f"{self.base}/alert"

    # camera level
    def camera(self, camera: str) -> str:
        return f"{self.base}/{check_segment(camera, 'camera')}"

    def motion(self, camera: str) -> str:
        return f"{self.camera(camera)}/motion"

    def event(self, camera: str) -> str:
        return f"{self.camera(camera)}/event"

    def image(self, camera: str, event_id: str, seq: int, name: str) -> str:
        eid = check_segment(event_id, "event id")
        return f"{self.camera(camera)}/image/{eid}/{int(seq)}/{check_segment(name, 'image name')}"

    def stats(self, camera: str) -> str:
        return f"{self.camera(camera)}/stats"

    def alert(self, camera: str | None) -> str:
        return self.site_alert if camera is None else f"{self.camera(camera)}/alert"

    def command(self, camera: str, key: str) -> str:
        return f"{self.camera(camera)}/set/{key}"

    def command_result(self, camera: str, key: str) -> str:
        return f"{self.command(camera, key)}/result"

    def setting_state(self, camera: str, key: str) -> str:
        return f"{self.camera(camera)}/state/{check_segment(key, 'setting')}"

    @property
    def command_filter(self) -> str:
        return f"{self.base}/+/set/+"


@dataclass(frozen=True)
class ParsedTopic:
    """What a received topic is about. kind: availability, alert, motion, event, image, stats,
    command, command_result, setting_state."""

    kind: str
    site: str
    camera: str | None = None
    event_id: str | None = None
    seq: int | None = None
    name: str | None = None  # image name or command key


def all_sites_filter(prefix: str) -> str:
    """What the control room subscribes to: every site and camera under the prefix."""
    return f"{prefix}/+/+/#"


def parse(prefix: str, topic: str) -> ParsedTopic | None:
    """Parse a topic of this tree; None when it is not one of ours or a level is malformed."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    try:
        site = check_segment(parts[0], "site")
        if len(parts) == 2:
            kind = {"availability": "availability", "alert": "alert"}.get(parts[1])
            return ParsedTopic(kind, site) if kind else None
        if len(parts) < 3:
            return None
        camera = check_segment(parts[1], "camera")
        rest = parts[2:]
        if len(rest) == 1 and rest[0] in ("motion", "event", "stats", "alert"):
            return ParsedTopic(rest[0], site, camera)
        if len(rest) == 4 and rest[0] == "image":
            if not rest[2].isdigit():
                return None
            return ParsedTopic(
                "image",
                site,
                camera,
                event_id=check_segment(rest[1], "event id"),
                seq=int(rest[2]),
                name=check_segment(rest[3], "image name"),
            )
        if len(rest) == 2 and rest[0] == "state":
            return ParsedTopic("setting_state", site, camera, name=check_segment(rest[1], "setting"))
        if rest[0] == "set" and len(rest) in (2, 3):
            key = check_segment(rest[1], "command")
            if len(rest) == 2:
                return ParsedTopic("command", site, camera, name=key)
            if rest[2] == "result":
                return ParsedTopic("command_result", site, camera, name=key)
    except TopicError:
        return None
    return None
