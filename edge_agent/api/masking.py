"""Secrets out, secrets back in.

Responses carry configs with every secret replaced by MASK: SecretStr fields (the MQTT password, the
API password hash) and the password inside a camera URL (rtsp://user:MASK@host/...). A client that
sends a masked value back unchanged keeps the stored secret; a mask anywhere else is refused.
"""

from __future__ import annotations

import re
from typing import Any

from edge_agent.config.loader import config_to_data
from edge_agent.config.schema import AgentConfig

MASK = "**********"
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@/\s]*)@")


def mask_url(url: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", url, count=1)


def masked_data(cfg: AgentConfig) -> dict[str, Any]:
    """The config as a plain dict with every secret masked (what responses carry)."""
    data = config_to_data(cfg, reveal_secrets=False)
    for cam in data.get("cameras", []):
        src = cam.get("source", {})
        if isinstance(src.get("url"), str):
            src["url"] = mask_url(src["url"])
    return data


def revealed_data(cfg: AgentConfig) -> dict[str, Any]:
    return config_to_data(cfg, reveal_secrets=True)


def _match(item: Any, i: int, masked: list) -> int | None:
    """Index in `masked` of the stored item an incoming list item stands for (by name, else position)."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        for j, old in enumerate(masked):
            if isinstance(old, dict) and old.get("name") == item["name"]:
                return j
        return None
    return i if i < len(masked) else None


def restore_secrets(incoming: Any, masked: Any, revealed: Any) -> Any:
    """Replace each value that equals its masked stored counterpart with the stored secret."""
    if isinstance(incoming, str):
        if isinstance(masked, str) and incoming == masked and masked != revealed:
            return revealed
        return incoming
    if isinstance(incoming, dict):
        m = masked if isinstance(masked, dict) else {}
        r = revealed if isinstance(revealed, dict) else {}
        return {k: restore_secrets(v, m.get(k), r.get(k)) for k, v in incoming.items()}
    if isinstance(incoming, list):
        if not (isinstance(masked, list) and isinstance(revealed, list) and len(masked) == len(revealed)):
            return [restore_secrets(v, None, None) for v in incoming]
        out = []
        for i, item in enumerate(incoming):
            j = _match(item, i, masked)
            out.append(restore_secrets(item, masked[j], revealed[j]) if j is not None else item)
        return out
    return incoming


def keys_holding_mask(data: Any, path: tuple = ()) -> list[str]:
    """Dotted keys whose value still contains MASK (a secret the client does not know)."""
    if isinstance(data, str):
        return [".".join(str(p) for p in path) or "(top level)"] if MASK in data else []
    if isinstance(data, dict):
        return [k for key, v in data.items() for k in keys_holding_mask(v, path + (key,))]
    if isinstance(data, list):
        return [k for i, v in enumerate(data) for k in keys_holding_mask(v, path + (i,))]
    return []
