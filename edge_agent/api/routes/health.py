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


@router.get("/api/health", response_model=Health)
def health(state: StateDep, store: StoreDep, agent: AgentDep) -> Health:
    cfg = store.config
    stats = agent.stats
    return Health(
        status="ok",
        uptime_s=round(time.monotonic() - state.started, 3),
        site=cfg.site,
        cameras={
            c.name: bool(stats[c.name].snapshot().get("connected")) if c.name in stats else False
            for c in cfg.cameras
        },
        read_only=cfg.api.auth.password_hash is None,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(m: MetricsDep) -> Response:
    body, content_type = m.render()
    return Response(body, media_type=content_type)
