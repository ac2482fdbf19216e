"""Log in (password -> bearer token), log out, and say whether changes are possible."""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api.auth import verify_password
from edge_agent.api.deps import (
    READ_ONLY_MESSAGE,
    AuthDep,
    BearerDep,
    ClientDep,
    StateDep,
    StoreDep,
    ThrottleDep,
    TokensDep,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class AuthStatus(BaseModel):
    password_set: bool = Field(description="false = the API is read-only")
    authenticated: bool
    message: str | None = None


_ERRORS = {
    401: {"description": "wrong password"},
    403: {"description": "no password set: read-only"},
    429: {"description": "too many failed logins from this client; see Retry-After"},
}


@router.post("/login", response_model=TokenResponse, responses=_ERRORS)
def login(
    body: LoginRequest,
    state: StateDep,
    store: StoreDep,
    tokens: TokensDep,
    throttle: ThrottleDep,
    client: ClientDep,
):
    wait = throttle.retry_after(client)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins; try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    auth = store.config.api.auth
    if auth.password_hash is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, READ_ONLY_MESSAGE)
    with state.login_slots:
        ok = verify_password(body.password, auth.password_hash.get_secret_value())
    if not ok:
        wait = throttle.failure(client)
        log.warning("failed API login from %s (next try allowed in %.0f s)", client, wait)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong password", headers={"WWW-Authenticate": "Bearer"}
        )
    throttle.success(client)
    log.info("API login from %s", client)
    return TokenResponse(access_token=tokens.issue(auth.token_ttl_s), expires_in=auth.token_ttl_s)


@router.post("/logout", status_code=204, responses={401: {"description": "not logged in"}})
def logout(_: AuthDep, tokens: TokensDep, creds: BearerDep) -> None:
    if creds is not None:
        tokens.revoke(creds.credentials)


@router.get("", response_model=AuthStatus)
def auth_status(store: StoreDep, tokens: TokensDep, creds: BearerDep) -> AuthStatus:
    password_set = store.config.api.auth.password_hash is not None
    return AuthStatus(
        password_set=password_set,
        authenticated=password_set and creds is not None and tokens.valid(creds.credentials),
        message=None if password_set else READ_ONLY_MESSAGE,
    )
