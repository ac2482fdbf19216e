"""Liveness and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from edge_agent.api.deps import (
    AgentDep,
    BearerDep,
    MetricsDep,
    MonitorDep,
    StateDep,
    StoreDep,
    TokensDep,
    from_monitoring,
    logged_in,
)

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Without a login (or a monitoring address) only status, uptime_s and read_only are sent."""

    status: str
    uptime_s: float
    read_only: bool
    site: str | None = None
    cameras: dict[str, bool] | None = None  # camera -> source connected
    alerts: list[dict] | None = None  # open site-level alerts (model failed, spool filling or dropping)


@router.get("/api/health", response_model=Health, response_model_exclude_none=True)
def health(
    request: Request, state: StateDep, store: StoreDep, agent: AgentDep, tokens: TokensDep, creds: BearerDep
) -> Health:
    cfg = store.config
    stats = agent.stats
    cameras = {
        c.name: bool(stats[c.name].snapshot().get("connected")) if c.name in stats else False
        for c in cfg.cameras
    }
    site_alerts = getattr(agent, "site_alerts", None)
    alerts = list(site_alerts()) if site_alerts else []
    enabled_down = any(not cameras[c.name] for c in cfg.cameras if c.enabled)
    status = "degraded" if alerts or enabled_down else "ok"
    uptime = round(time.monotonic() - state.started, 3)
    read_only = cfg.api.auth.password_hash is None
    if not (logged_in(store, tokens, creds) or from_monitoring(request, store)):
        return Health(status=status, uptime_s=uptime, read_only=read_only)  # liveness only
    return Health(
        status=status, uptime_s=uptime, read_only=read_only, site=cfg.site, cameras=cameras, alerts=alerts
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {"description": "not logged in and not from an api.monitoring address"},
        403: {"description": "no API password set and not from an api.monitoring address"},
    },
)
def metrics(_: MonitorDep, m: MetricsDep) -> Response:
    body, content_type = m.render()
    return Response(body, media_type=content_type)
