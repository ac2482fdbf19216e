"""What a running agent applies live and what needs a restart: one table, one diff.

Every config key is looked up here by its dotted path, cameras named by name
(`cameras.door.motion.sensitivity`); the longest entry of TABLE that is a prefix of the key
decides. The agent (Agent.apply_config), the API (PUT /api/config, PATCH /api/cameras/{name},
DELETE /api/config/overlay) and the MQTT commands all answer from it, so the same key always
gets the same answer. docs/api.md and docs/mqtt.md list the same table.
"""

from __future__ import annotations

from typing import Any

from edge_agent.config.loader import config_to_data
from edge_agent.config.schema import AgentConfig

LIVE, RESTART = "live", "restart"

# dotted key ("cameras.*" stands for any camera) -> LIVE or RESTART; the longest prefix wins
TABLE: dict[str, str] = {
    "site": RESTART,  # the topic tree and the client id
    "cameras": RESTART,  # a camera added, removed or renamed
    "cameras.*.name": RESTART,
    "cameras.*.enabled": LIVE,  # its capture and loop stop and start
    "cameras.*.source": RESTART,
    "cameras.*.motion": LIVE,  # the gate is reconfigured in place
    "cameras.*.low_light": LIVE,  # read per event
    "cameras.*.faces": LIVE,  # read per event (a new detector model is checked first)
    "cameras.*.snapshots": LIVE,  # read per event
    "cameras.*.health": LIVE,  # read per check
    "models": RESTART,  # loaded once
    "inference": RESTART,
    "pipeline": RESTART,  # threads and queue sizes
    "publish": RESTART,  # the connection and the spool
    "state_dir": RESTART,
    "logging": LIVE,
    "api": LIVE,  # auth and max_body_mb are read on every request
    "api.enabled": RESTART,  # the listening socket
    "api.bind": RESTART,
    "api.port": RESTART,
    "api.trusted_proxies": RESTART,
}


def _pattern(key: str) -> str:
    parts = key.split(".")
    if len(parts) >= 2 and parts[0] == "cameras":
        parts[1] = "*"
    return ".".join(parts)


def mode(key: str) -> str:
    """LIVE or RESTART for a dotted key (cameras by name); unknown keys need a restart."""
    pattern = _pattern(key)
    best, answer = -1, RESTART
    for entry, value in TABLE.items():
        if (pattern == entry or pattern.startswith(entry + ".")) and len(entry) > best:
            best, answer = len(entry), value
    return answer


def dotted(path: tuple | list) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def changed_keys(old: Any, new: Any, path: tuple = ()) -> list[str]:
    """Dotted keys that differ between two plain config documents; cameras are compared by name
    (cameras.door.motion...), a camera added or removed is `cameras.<name>`."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [k for key in keys for k in changed_keys(old.get(key), new.get(key), path + (key,))]
    named = (
        isinstance(old, list)
        and isinstance(new, list)
        and path == ("cameras",)
        and all(isinstance(c, dict) and "name" in c for c in old + new)
    )
    if named:
        o = {c["name"]: c for c in old}
        n = {c["name"]: c for c in new}
        names = list(o) + [k for k in n if k not in o]
        return [k for name in names for k in changed_keys(o.get(name), n.get(name), path + (name,))]
    return [] if old == new else [dotted(path)]


def config_changes(old: AgentConfig, new: AgentConfig) -> list[str]:
    """The dotted keys changed from old to new (secrets compared by value, never shown)."""
    return changed_keys(config_to_data(old, reveal_secrets=True), config_to_data(new, reveal_secrets=True))


def restart_keys(old: AgentConfig, new: AgentConfig) -> list[str]:
    """The changed keys a running agent cannot apply live, sorted."""
    return sorted(k for k in config_changes(old, new) if mode(k) == RESTART)
