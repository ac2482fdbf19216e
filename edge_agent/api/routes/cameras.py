"""Per camera: settings (read, merge-patch), live counters, latest snapshots."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Response, status
from pydantic import BaseModel, Field

from edge_agent.api.changes import ChangeRefused, apply_change, check_depth, merge_patch
from edge_agent.api.deps import AgentDep, AuthDep, StateDep, StoreDep
from edge_agent.api.masking import masked_data
from edge_agent.api.routes.config import CHANGE_ERRORS, READ_ERRORS, refused

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
_NOT_FOUND = {404: {"description": "no such camera"}, **READ_ERRORS}


class CameraSummary(BaseModel):
    name: str
    enabled: bool
    stats: dict[str, Any]


class CameraChangeResponse(BaseModel):
    changed: list[str]
    restart_required: list[str]
    camera: dict[str, Any] = Field(description="the saved camera, secrets masked")


def _index(data: dict[str, Any], name: str) -> int:
    for i, cam in enumerate(data["cameras"]):
        if cam["name"] == name:
            return i
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera named {name!r}")


@router.get("", response_model=list[CameraSummary], responses=READ_ERRORS)
def list_cameras(_: AuthDep, store: StoreDep, agent: AgentDep) -> list[CameraSummary]:
    stats = agent.stats
    return [
        CameraSummary(
            name=c.name, enabled=c.enabled, stats=stats[c.name].snapshot() if c.name in stats else {}
        )
        for c in store.config.cameras
    ]


@router.get("/{name}", response_model=dict[str, Any], responses=_NOT_FOUND)
def read_camera(name: str, _: AuthDep, store: StoreDep) -> dict[str, Any]:
    data = masked_data(store.config)
    return data["cameras"][_index(data, name)]


@router.patch("/{name}", response_model=CameraChangeResponse, responses={**CHANGE_ERRORS, **_NOT_FOUND})
def patch_camera(
    name: str, _: AuthDep, state: StateDep, agent: AgentDep, body: Annotated[dict[str, Any], Body()]
) -> CameraChangeResponse:
    """JSON merge patch (RFC 7396) of one camera: objects merge, null resets to the default, lists
    (masks, zones) are replaced whole. Error keys are relative to the camera (e.g. motion.sensitivity)."""
    with state.store.lock:
        data = masked_data(state.store.config)
        i = _index(data, name)
        try:
            check_depth(body)
            data["cameras"][i] = merge_patch(data["cameras"][i], body)
            out = apply_change(state, agent, data)
        except ChangeRefused as exc:
            for e in exc.errors:
                loc = e["loc"]
                if len(loc) >= 2 and loc[0] == "cameras" and loc[1] == i:
                    e["key"] = ".".join(str(p) for p in loc[2:]) or "(camera)"
            raise refused(exc) from None
    saved = masked_data(out.config)
    new_name = body.get("name", name) if isinstance(body.get("name"), str) else name
    cam = next((c for c in saved["cameras"] if c["name"] == new_name), {})
    return CameraChangeResponse(changed=out.changed, restart_required=out.restart_required, camera=cam)


@router.get("/{name}/stats", response_model=dict[str, Any], responses=_NOT_FOUND)
def camera_stats(name: str, _: AuthDep, agent: AgentDep) -> dict[str, Any]:
    stats = agent.stats
    if name not in stats:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera named {name!r}")
    return stats[name].snapshot()


@router.get(
    "/{name}/snapshot/{kind}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        404: {"description": "no such camera or no snapshot yet"},
        **READ_ERRORS,
    },
)
def snapshot(
    name: str, kind: Literal["original", "enhanced"], _: AuthDep, store: StoreDep, agent: AgentDep
) -> Response:
    if not any(c.name == name for c in store.config.cameras):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera named {name!r}")
    jpeg = (agent.latest_snapshots.get(name) or {}).get(kind)
    if not jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind} snapshot of {name!r} yet")
    return Response(bytes(jpeg), media_type="image/jpeg", headers={"Cache-Control": "no-store"})
