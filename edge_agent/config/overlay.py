"""The box's overlay over the installer's base config, as plain data (no I/O, no schema).

The installer (Ansible) owns the base file, e.g. ``/etc/nightwatch/agent.yaml``. The box owns the
overlay beside it, ``agent.local.yaml`` (:func:`overlay_path_for`): a nested partial document with
only the keys that differ from the base, written by the config API, the web page and the MQTT live
commands. The agent runs on ``merge(base, overlay)``:

- mappings merge key by key, the overlay wins;
- ``null`` in the overlay removes the key, so the schema's default applies;
- any other value (lists included: masks, zones) replaces the base's value whole;
- ``cameras`` is matched BY NAME, never by position: an overlay entry ``{name: door, ...}`` is merged
  into the base camera named ``door``. The base owns the camera list (which cameras exist, their
  names and order); an entry naming a camera the base does not have is left out of the merge and
  reported (see :func:`merge`).

See docs/config-ownership.md.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

OVERLAY_INFIX = ".local"
_MISSING = object()


def overlay_path_for(base: str | Path) -> Path:
    """``agent.yaml`` -> ``agent.local.yaml`` in the same folder (``agent`` -> ``agent.local``)."""
    base = Path(base)
    return base.with_name(f"{base.stem}{OVERLAY_INFIX}{base.suffix}")


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(merged document, names of overlay cameras the base does not have). Inputs are not changed.

    The overlay's shape is assumed checked (cameras: a list of mappings with unique string names)."""
    ignored: list[str] = []
    merged = _merge(base, overlay, (), ignored)
    return merged, ignored


def _merge(base: Any, patch: Any, path: tuple, ignored: list[str]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif path == () and key == "cameras":
            out[key] = _merge_cameras(out.get(key), value, ignored)
        else:
            out[key] = _merge(out.get(key), value, path + (key,), ignored)
    return out


def _merge_cameras(base: Any, entries: list[dict[str, Any]], ignored: list[str]) -> Any:
    if not isinstance(base, list):
        ignored.extend(e["name"] for e in entries)
        return base
    by_name = {e["name"]: e for e in entries}
    known = {c.get("name") for c in base if isinstance(c, dict)}
    ignored.extend(name for name in by_name if name not in known)
    out = []
    for cam in base:
        entry = by_name.get(cam.get("name")) if isinstance(cam, dict) else None
        out.append(_merge(cam, entry, ("cameras", cam["name"]), ignored) if entry else copy.deepcopy(cam))
    return out


def diff(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The overlay that turns `base` into `new` (both whole documents as config_to_data gives them:
    a key whose value is None is absent). Keys only in `base` become ``null``; cameras by name.

    The camera lists must hold the same names in the same order (the base owns the list)."""
    return _diff(base, new, ())


def _diff(base: dict[str, Any], new: dict[str, Any], path: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {key: None for key in base if key not in new}
    for key, value in new.items():
        old = base.get(key, _MISSING)
        if path == () and key == "cameras":
            entries = _diff_cameras(old if isinstance(old, list) else [], value)
            if entries:
                out[key] = entries
        elif isinstance(value, dict) and isinstance(old, dict):
            sub = _diff(old, value, path + (key,))
            if sub:
                out[key] = sub
        elif old is _MISSING or old != value:
            out[key] = copy.deepcopy(value)
    return out


def _diff_cameras(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = {c["name"]: c for c in base}
    entries = []
    for cam in new:
        sub = _diff(old.get(cam["name"], {}), cam, ("cameras", cam["name"]))
        sub.pop("name", None)
        if sub:
            entries.append({"name": cam["name"], **sub})
    return entries


def leaf_keys(overlay: dict[str, Any]) -> list[str]:
    """Dotted keys the overlay sets, cameras by name: ``cameras.door.motion.masks``, ``site``.
    A list or a null is one key; a camera's ``name`` is its address, not a key."""
    keys: list[str] = []

    def walk(value: Any, path: tuple) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        else:
            keys.append(".".join(str(p) for p in path))

    for key, value in overlay.items():
        if key == "cameras" and isinstance(value, list):
            for cam in value:
                if isinstance(cam, dict):
                    walk({k: v for k, v in cam.items() if k != "name"}, ("cameras", cam.get("name")))
        else:
            walk(value, (key,))
    return keys


def camera_entries(overlay: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """The overlay's camera entries whose names are in `names` (in the overlay's order)."""
    cams = overlay.get("cameras")
    if not isinstance(cams, list):
        return []
    wanted = set(names)
    return [copy.deepcopy(c) for c in cams if isinstance(c, dict) and c.get("name") in wanted]


def like(overlay: Any, whole: Any) -> Any:
    """The overlay's shape filled with the values of `whole` (e.g. the merged config with its
    secrets masked): what an API shows of the overlay without ever showing a secret. ``null``
    leaves stay ``null``; cameras are matched by name; a camera `whole` lacks is left out."""
    if overlay is None:
        return None
    if not isinstance(overlay, dict) or not isinstance(whole, dict):
        return whole
    out: dict[str, Any] = {}
    for key, value in overlay.items():
        if key == "cameras" and isinstance(value, list) and isinstance(whole.get(key), list):
            cams = {c.get("name"): c for c in whole[key] if isinstance(c, dict)}
            out[key] = [
                {"name": entry["name"], **like({k: v for k, v in entry.items() if k != "name"}, cams[entry["name"]])}
                for entry in value
                if isinstance(entry, dict) and entry.get("name") in cams
            ]
        else:
            out[key] = like(value, whole.get(key))
    return out


class _Dumper(yaml.SafeDumper):
    """Lists without mappings inside (points, [x, y]) on one line: a polygon reads as one."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = not any(isinstance(v, dict) for v in data) and all(
        not isinstance(v, list) or not any(isinstance(w, (dict, list)) for w in v) for v in data
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat or None)


_Dumper.add_representer(list, _represent_list)


def dump(overlay: dict[str, Any]) -> str:
    """YAML text of an overlay (block style; short lists such as polygons on one line)."""
    return yaml.dump(overlay, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
