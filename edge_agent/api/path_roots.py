"""Path settings changed through the API must lie inside api.path_roots.

The installer's config file may point any path setting anywhere; a change through the API (or a
stolen login) may not: a new or changed path (source.file, publish.local.dir, state_dir,
faces.yunet_model, models.dir, TLS and key files, the spool) is resolved (symlinks and `..`
followed) and must fall inside one of the roots. The answer is decided before anything opens the
file, so it is the same for a file that exists and one that does not. The roots themselves are
the installer's: the API cannot change api.path_roots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge_agent.config.schema import AgentConfig


def _paths(value: Any, loc: tuple, ident: tuple) -> Iterator[tuple[tuple, tuple, Path]]:
    """(loc for errors, identity for comparison, path) of every Path value; cameras are identified
    by name so that reordering them is not a change."""
    if isinstance(value, Path):
        yield loc, ident, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _paths(getattr(value, name), loc + (name,), ident + (name,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            key = getattr(item, "name", i) if isinstance(item, BaseModel) else i
            yield from _paths(item, loc + (i,), ident + (key,))


def _real(path: Path) -> str:
    return os.path.realpath(os.path.expanduser(str(path)))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def path_root_errors(old: AgentConfig, new: AgentConfig) -> list[dict[str, Any]]:
    """Error items (loc, key, msg) for every path setting the change moves outside the roots."""
    errors: list[dict[str, Any]] = []
    if [_real(p) for p in new.api.path_roots] != [_real(p) for p in old.api.path_roots]:
        errors.append(
            {
                "loc": ["api", "path_roots"],
                "key": "api.path_roots",
                "msg": "can only be set in the config file on the box, not through the API",
                "type": "path_roots",
            }
        )
    before = {ident: _real(p) for _, ident, p in _paths(old, (), ())}
    roots = [_real(p) for p in old.api.path_roots]
    shown = ", ".join(str(p) for p in old.api.path_roots) or "none configured"
    for loc, ident, path in _paths(new, (), ()):
        if loc[:2] == ("api", "path_roots"):
            continue
        real = _real(path)
        if before.get(ident) == real or any(_inside(real, r) for r in roots):
            continue
        errors.append(
            {
                "loc": list(loc),
                "key": ".".join(str(p) for p in loc),
                "msg": f"a path changed through the API must lie inside api.path_roots ({shown})",
                "type": "path_roots",
            }
        )
    return errors
