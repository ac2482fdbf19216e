"""create_app(store, agent): the FastAPI app of the local config API and web page.

The per-app state (tokens, login backoff, metrics) is built in the lifespan handler and kept on
app.state; nothing lives in module globals, so several apps (or tests) never share anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from edge_agent.api.auth import LoginThrottle, TokenStore
from edge_agent.api.changes import ChangeFailed
from edge_agent.api.deps import AgentPort, ApiState
from edge_agent.api.guards import HostCheckMiddleware, SecurityHeadersMiddleware
from edge_agent.api.limits import BodyLimitMiddleware
from edge_agent.api.publisher_metrics import PublisherCollector
from edge_agent.api.routes import auth, cameras, config, enhance, health, page
from edge_agent.config.schema import AgentConfig
from edge_agent.config.store import ConfigStore
from edge_agent.metrics import AgentMetrics

log = logging.getLogger(__name__)


def _model_infos(agent: AgentPort) -> Callable[[], list]:
    """Models for the model_info metric, when the agent can tell (an optional `model_info`)."""

    def provider() -> list:
        info = getattr(agent, "model_info", None)
        if info is None:
            return []
        return list(info() if callable(info) else info)

    return provider


def _document_config_body(app: FastAPI) -> None:
    """Publish the AgentConfig JSON schema as the body of PUT /api/config in the OpenAPI document.

    The route takes a plain object (masked secrets must pass through before validation), so FastAPI
    cannot infer it; clients and API fuzzers still get the real shape of a config."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            cfg_schema = AgentConfig.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, sub in cfg_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components["AgentConfig"] = cfg_schema
            body = schema["paths"]["/api/config"]["put"]["requestBody"]["content"]["application/json"]
            body["schema"] = {"$ref": "#/components/schemas/AgentConfig"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def create_app(
    store: ConfigStore, agent: AgentPort, *, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics = AgentMetrics(lambda: agent.stats, _model_infos(agent), getattr(agent, "site_alerts", None))
        metrics.registry.register(PublisherCollector(agent))  # the MQTT spool, when there is one
        app.state.api = ApiState(
            store=store,
            agent=agent,
            tokens=TokenStore(clock=clock),
            throttle=LoginThrottle(clock=clock),
            metrics=metrics,
        )
        log.info(
            "config API ready (%s)", "read-only" if store.config.api.auth.password_hash is None else "auth on"
        )
        yield
        app.state.api.tokens.revoke_all()

    app = FastAPI(
        title="Nightwatch Edge config API",
        version="1",
        description="Local config API of one Nightwatch Edge box. Changes need a bearer token from /api/auth/login.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=lambda: int(store.config.api.max_body_mb * 1024 * 1024))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(HostCheckMiddleware, api_config=lambda: store.config.api)  # outermost: runs first

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # like FastAPI's own handler, minus the submitted values (they may hold a password)
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "key": ".".join(str(p) for p in e.get("loc", ())[1:]),
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(ChangeFailed)
    async def _change_failed(request: Request, exc: ChangeFailed) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    for module in (auth, config, cameras, enhance, health, page):
        app.include_router(module.router)
    _document_config_body(app)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
