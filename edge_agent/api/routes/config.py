"""The whole config: read (secrets masked) and replace (validated whole, saved atomically).

Changes are saved to the box's overlay over the installer's base file (edge_agent/config/store.py);
/api/config/overlay shows and resets it (routes/overlay.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field

from edge_agent.api.changes import ChangeRefused, apply_change
from edge_agent.api.deps import AgentDep, AuthDep, StateDep, StoreDep
from edge_agent.api.masking import masked_data
from edge_agent.api.routes import overlay

router = APIRouter(prefix="/api/config", tags=["config"])


class ChangeResponse(BaseModel):
    changed: list[str] = Field(description="dotted keys that changed")
    restart_required: list[str] = Field(description="changed keys that take effect after a restart")
    config: dict[str, Any] = Field(description="the saved config, secrets masked")


CHANGE_ERRORS = {
    401: {"description": "not logged in"},
    403: {"description": "read-only: no API password set"},
    413: {"description": "body over api.max_body_mb"},
    422: {"description": "refused whole; each error names its key"},
    503: {
        "description": "valid, but the running agent could not apply it or the file could not be saved; nothing changed"
    },
}


def refused(exc: ChangeRefused) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors)


READ_ERRORS = {401: {"description": "not logged in"}, 403: {"description": "no API password set"}}


@router.get("", response_model=dict[str, Any], responses=READ_ERRORS)
def read_config(_: AuthDep, store: StoreDep) -> dict[str, Any]:
    return masked_data(store.config)


@router.put("", response_model=ChangeResponse, responses=CHANGE_ERRORS)
def replace_config(
    _: AuthDep, state: StateDep, agent: AgentDep, body: Annotated[dict[str, Any], Body()]
) -> ChangeResponse:
    """Replace the whole config. Send masked secrets back unchanged to keep them."""
    try:
        out = apply_change(state, agent, body)
    except ChangeRefused as exc:
        raise refused(exc) from None
    return ChangeResponse(
        changed=out.changed, restart_required=out.restart_required, config=masked_data(out.config)
    )


router.include_router(overlay.router)  # /api/config/overlay: the on-box changes
