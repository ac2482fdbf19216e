"""What the API needs from the agent (a Protocol), the per-app state, and the Annotated dependencies.

Routes ask for what they use (StoreDep, AgentDep, AuthDep, ...); tests replace any of them with
app.dependency_overrides. The state is built by the app's lifespan (see app.py), never a module global.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Protocol, runtime_checkable

import numpy as np
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from edge_agent.api.auth import LoginThrottle, TokenStore
from edge_agent.config.schema import AgentConfig
from edge_agent.config.store import ConfigStore
from edge_agent.metrics import AgentMetrics
from edge_agent.pipeline.stats import CameraStats

READ_ONLY_MESSAGE = (
    "read-only: no API password is set. Run `edge-agent hash-password` on the box and put the printed "
    "hash in api.auth.password_hash of the config file, then restart the agent."
)


@runtime_checkable
class AgentPort(Protocol):
    """The part of the running agent the API uses. The real Agent (edge_agent.app) provides it."""

    @property
    def config(self) -> AgentConfig: ...

    @property
    def stats(self) -> Mapping[str, CameraStats]: ...

    @property
    def latest_snapshots(self) -> Mapping[str, Mapping[str, bytes | None]]:
        """camera -> {"original": JPEG bytes or None, "enhanced": JPEG bytes or None}"""
        ...

    def apply_config(self, new_cfg: AgentConfig) -> list[str]:
        """Apply what is safe live; return the dotted keys that need a restart."""
        ...

    def enhance_image(self, bgr: np.ndarray) -> np.ndarray: ...


@dataclass
class ApiState:
    store: ConfigStore
    agent: AgentPort
    tokens: TokenStore
    throttle: LoginThrottle
    metrics: AgentMetrics
    started: float = field(default_factory=time.monotonic)
    # at most two password checks at once: scrypt takes ~16 MiB and tens of ms each
    login_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(2))


def get_state(request: Request) -> ApiState:
    return request.app.state.api


StateDep = Annotated[ApiState, Depends(get_state)]


def get_store(state: StateDep) -> ConfigStore:
    return state.store


def get_agent(state: StateDep) -> AgentPort:
    return state.agent


def get_tokens(state: StateDep) -> TokenStore:
    return state.tokens


def get_throttle(state: StateDep) -> LoginThrottle:
    return state.throttle


def get_metrics(state: StateDep) -> AgentMetrics:
    return state.metrics


StoreDep = Annotated[ConfigStore, Depends(get_store)]
AgentDep = Annotated[AgentPort, Depends(get_agent)]
TokensDep = Annotated[TokenStore, Depends(get_tokens)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]
MetricsDep = Annotated[AgentMetrics, Depends(get_metrics)]

_bearer = HTTPBearer(auto_error=False, description="token from POST /api/auth/login")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_auth(store: StoreDep, tokens: TokensDep, creds: BearerDep) -> None:
    """Every change goes through this: 403 while no password is set, 401 without a valid token."""
    if store.config.api.auth.password_hash is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, READ_ONLY_MESSAGE)
    if creds is None or not tokens.valid(creds.credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "log in first (POST /api/auth/login) and send the token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


AuthDep = Annotated[None, Depends(require_auth)]


def logged_in(store: StoreDep, tokens: TokensDep, creds: BearerDep) -> bool:
    return (
        store.config.api.auth.password_hash is not None
        and creds is not None
        and tokens.valid(creds.credentials)
    )


def from_monitoring(request: Request, store: StoreDep) -> bool:
    """True when the peer's address is in api.monitoring (may read /metrics and /api/health)."""
    nets = store.config.api.monitoring
    if not nets or request.client is None:
        return False
    try:
        addr = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in nets)


def require_auth_or_monitoring(
    request: Request, store: StoreDep, tokens: TokensDep, creds: BearerDep
) -> None:
    if not from_monitoring(request, store):
        require_auth(store, tokens, creds)


MonitorDep = Annotated[None, Depends(require_auth_or_monitoring)]


def client_id(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientDep = Annotated[str, Depends(client_id)]
