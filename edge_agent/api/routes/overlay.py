"""The box's overlay (on-box changes over the installer's base config): see it, reset it.

GET shows which keys the box overrides (values with secrets masked); DELETE drops them all: the
running agent applies the base first (refused whole if it cannot), then the overlay is moved to its
``.bak``. Behind the same login as every other config route (bearer token, 403 while no password).
Included by routes/config.py under /api/config.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from edge_agent.api.changes import ChangeFailed, _problems
from edge_agent.api.deps import AgentDep, AuthDep, StateDep, StoreDep
from edge_agent.api.masking import mask_url, masked_data, revealed_data
from edge_agent.config import overlay as ov
from edge_agent.config.live import changed_keys
from edge_agent.config.loader import ConfigError
from edge_agent.config.store import ConfigStore

log = logging.getLogger(__name__)
router = APIRouter(prefix="/overlay")

_READ = {401: {"description": "not logged in"}, 403: {"description": "no API password set"}}
_RESET = {
    **_READ,
    422: {"description": "the running agent cannot apply the base config (or the base file is invalid); nothing changed"},
    503: {"description": "the overlay could not be moved aside; the agent went back to the previous config"},
}


class OverlayView(BaseModel):
    path: str = Field(description="the overlay file (the box's)")
    base_path: str = Field(description="the base config file (the installer's)")
    exists: bool
    keys: int = Field(description="how many keys the overlay sets")
    changed_keys: list[str] = Field(description="dotted keys the overlay sets, cameras by name")
    ignored_cameras: list[str] = Field(description="overlay cameras the base does not have (ignored)")
    overlay: dict[str, Any] = Field(description="the overlay document, secrets masked")


class ResetResponse(BaseModel):
    changed: list[str] = Field(description="dotted keys that went back to the base's values")
    restart_required: list[str] = Field(description="of those, the keys that take effect after a restart")
    config: dict[str, Any] = Field(description="the config now applied (the base), secrets masked")


def _view(store: ConfigStore) -> OverlayView:
    data = store.overlay
    shown = ov.like(data, masked_data(store.config))
    stale = ov.camera_entries(data, store.ignored_cameras)
    for entry in stale:  # not in the merged config: mask the one secret a camera can hold here
        src = entry.get("source")
        if isinstance(src, dict) and isinstance(src.get("url"), str):
            src["url"] = mask_url(src["url"])
    if stale:
        shown.setdefault("cameras", []).extend(stale)
    keys = ov.leaf_keys(data)
    return OverlayView(
        path=str(store.overlay_path), base_path=str(store.path), exists=store.overlay_path.exists(),
        keys=len(keys), changed_keys=keys, ignored_cameras=store.ignored_cameras, overlay=shown,
    )


@router.get("", response_model=OverlayView, responses=_READ)
def read_overlay(_: AuthDep, store: StoreDep) -> OverlayView:
    """The on-box changes: what the box overrides over the installer's base config."""
    return _view(store)


@router.delete("", response_model=ResetResponse, responses=_RESET)
def reset_overlay(_: AuthDep, state: StateDep, agent: AgentDep) -> ResetResponse:
    """Drop every on-box change: the agent applies the base config file alone (read again)."""
    store = state.store
    restart: list[str] = []

    def apply(base: Any) -> None:
        restart.extend(agent.apply_config(base))

    with store.lock:
        old = store.config
        try:
            base = store.reset_overlay(apply)
        except ConfigError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _problems(exc)) from None
        except Exception as exc:
            if isinstance(exc, OSError):
                log.error("could not move the overlay aside: %s", exc.strerror or type(exc).__name__)
            else:
                log.exception("the agent failed to apply the base config; the overlay was kept")
            try:
                agent.apply_config(old)
            except Exception:
                log.exception("could not re-apply the previous config; restart the agent")
            raise ChangeFailed("the on-box changes could not be reset; nothing changed") from None
    changed = changed_keys(revealed_data(old), revealed_data(base))
    if any(k.startswith("api.auth.password_hash") for k in changed):
        state.tokens.revoke_all()  # the base's password applies again: every session ends
    log.info("on-box changes reset through the API; back to the base: %s", changed or "nothing")
    return ResetResponse(changed=changed, restart_required=sorted(set(restart)), config=masked_data(base))
