"""The operators' console: a FastAPI app the receiver serves beside its ingest (static page in
static/, JSON under /api). Every /api route but login needs a session (sessions.py); changes
(hold, logout) also need the session's CSRF token and the operator role. No CORS: the browser
refuses other origins' reads, and a change from another origin fails the CSRF check.

(No `from __future__ import annotations` here: FastAPI reads the route annotations, which name
dependencies local to create_console.)
"""


import asyncio
import json
import logging
import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from edge_agent.control_room import queries
from edge_agent.control_room.config import ConsoleConfig
from edge_agent.control_room.console.sessions import COOKIE, CSRF_HEADER, Session, Sessions
from edge_agent.control_room.evidence import export_event
from edge_agent.publish.topics import SEGMENT_RE

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
Segment = Annotated[str, Field(pattern=SEGMENT_RE.pattern)]


class Login(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=256)


class Hold(BaseModel):
    hold: bool


def create_console(store, cfg: ConsoleConfig, *, sessions: Sessions | None = None) -> FastAPI:
    """store: a ReceiverStore of its own (its own database connection)."""
    sessions = sessions or Sessions(cfg)
    app = FastAPI(title="Nightwatch control room", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions

    def session(request: Request) -> Session:
        s = sessions.get(request.cookies.get(COOKIE))
        if s is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first (or the session expired)")
        return s

    def changing(request: Request, s: Annotated[Session, Depends(session)]) -> Session:
        if request.headers.get(CSRF_HEADER) != s.csrf:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
        return s

    def operator(s: Annotated[Session, Depends(changing)]) -> Session:
        if not s.may_change:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{s.operator} is a viewer: read only")
        return s

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        return response

    # ------------------------------------------------------------------ login
    @app.post("/api/login")
    def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
        client = request.client.host if request.client else "?"
        wait = sessions.throttle.retry_after(client)
        if wait > 0:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"too many failed logins; wait {wait:.0f} s",
                                headers={"Retry-After": str(int(wait) + 1)})
        got = sessions.login(body.name, body.password)
        if got is None:
            sessions.throttle.failure(client)
            log.warning("console login refused for %r from %s", body.name, client)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong name or password")
        sessions.throttle.success(client)
        token, s = got
        response.set_cookie(COOKIE, token, max_age=int(cfg.session_ttl_s), httponly=True, samesite="strict",
                            secure=cfg.secure_cookies, path="/")
        log.info("console login: %s (%s) from %s", s.operator, s.role, client)
        return {"name": s.operator, "role": s.role, "csrf": s.csrf, "expires": s.expires}

    @app.post("/api/logout")
    def logout(request: Request, response: Response, s: Annotated[Session, Depends(changing)]) -> dict[str, bool]:
        sessions.logout(request.cookies.get(COOKIE))
        response.delete_cookie(COOKIE, path="/")
        return {"ok": True}

    @app.get("/api/me")
    def me(s: Annotated[Session, Depends(session)]) -> dict[str, Any]:
        return {"name": s.operator, "role": s.role, "csrf": s.csrf, "expires": s.expires}

    # ------------------------------------------------------------------ events
    @app.get("/api/events")
    def events(
        s: Annotated[Session, Depends(session)],
        site: Annotated[Segment | None, Query()] = None,
        camera: Annotated[Segment | None, Query()] = None,
        since: float | None = None,
        until: float | None = None,
        has_faces: bool | None = None,
        flagged: bool | None = None,
        held: bool | None = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=queries.MAX_PER_PAGE)] = 50,
    ) -> dict[str, Any]:
        f = queries.EventFilter(site, camera, since, until, has_faces, flagged, held)
        return queries.list_events(store, f, page, per_page)

    def _detail(site: str, event_id: str) -> dict[str, Any]:
        d = queries.event_detail(store, site, event_id)
        if d is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {event_id} from site {site}")
        return d

    @app.get("/api/events/{site}/{event_id}")
    def event(site: Segment, event_id: Segment, s: Annotated[Session, Depends(session)]) -> dict[str, Any]:
        return _detail(site, event_id)

    @app.post("/api/events/{site}/{event_id}/hold")
    def hold(site: Segment, event_id: Segment, body: Hold, s: Annotated[Session, Depends(operator)]) -> dict[str, Any]:
        if not queries.set_hold(store, site, event_id, s.operator, body.hold):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {event_id} from site {site}")
        log.info("event %s/%s %s by %s", site, event_id, "put on hold" if body.hold else "released", s.operator)
        return {"held": body.hold}

    @app.get("/api/events/{site}/{event_id}/evidence.zip")
    def evidence(site: Segment, event_id: Segment, s: Annotated[Session, Depends(session)]) -> Response:
        data = export_event(store, _detail(site, event_id), s.operator)
        log.info("evidence of %s/%s exported by %s", site, event_id, s.operator)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{event_id}.zip"'})

    @app.get("/api/images/{image_id}")
    def image(image_id: int, s: Annotated[Session, Depends(session)]) -> Response:
        row = queries.image_row(store, image_id)
        try:
            data = store.read(row["path"]) if row is not None and row["path"] else None
        except OSError:
            data = None
        if data is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such image")
        return Response(data, media_type=mimetypes.guess_type(row["name"])[0] or "application/octet-stream")

    # ------------------------------------------------------------------ alerts, sites, live updates
    @app.get("/api/alerts")
    def alerts(s: Annotated[Session, Depends(session)], state: str | None = Query(None, pattern="^(open|closed)$")):
        return queries.alerts(store, state)

    @app.get("/api/sites")
    def sites(s: Annotated[Session, Depends(session)]) -> list[dict[str, Any]]:
        return queries.sites(store)

    @app.get("/api/stream")
    async def stream(request: Request, s: Annotated[Session, Depends(session)]) -> StreamingResponse:
        """Server-sent events: one `event` message per event message stored after the connect."""

        async def gen():
            last = queries.latest_row(store)
            yield ": connected\n\n"
            while not await request.is_disconnected():
                if sessions.get(request.cookies.get(COOKIE)) is None:
                    return  # the session expired or logged out
                rows = queries.events_after(store, last)
                for r in rows:
                    last = r["id"]
                    yield f"event: event\ndata: {json.dumps(r)}\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(gen(), media_type="text/event-stream")

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
