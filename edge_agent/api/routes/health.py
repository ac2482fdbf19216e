"""Liveness and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from pydantic import BaseModel

from edge_agent.api.deps import AgentDep, MetricsDep, StateDep, StoreDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    uptime_s: float
    site: str
    cameras: dict[str, bool]  # camera -> source connected
    read_only: bool
    alerts: list[dict] = []  # open site-level alerts (model failed, spool filling or dropping)


@router.get("/api/health", response_model=Health)
def health(state: StateDep, store: StoreDep, agent: AgentDep) -> Health:
    cfg = store.config
    stats = agent.stats
    cameras = {
        c.name: bool(stats[c.name].snapshot().get("connected")) if c.name in stats else False
        for c in cfg.cameras
    }
    site_alerts = getattr(agent, "site_alerts", None)
    alerts = list(site_alerts()) if site_alerts else []
    enabled_down = any(not cameras[c.name] for c in cfg.cameras if c.enabled)
    return Health(
        status="degraded" if alerts or enabled_down else "ok",
        uptime_s=round(time.monotonic() - state.started, 3),
        site=cfg.site,
        cameras=cameras,
        read_only=cfg.api.auth.password_hash is None,
        alerts=alerts,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(m: MetricsDep) -> Response:
    body, content_type = m.render()
    return Response(body, media_type=content_type)
