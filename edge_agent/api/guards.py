"""Two ASGI middlewares in front of every route: the Host header check (DNS rebinding) and the
security headers of every response (CSP with frame-ancestors 'none', X-Frame-Options, nosniff).

A DNS-rebinding page on evil.example that makes evil.example resolve to this box is same-origin
with the API in the browser, but its requests carry `Host: evil.example`; refusing unknown names
ends the attack. IP literals cannot be rebound, so the bind address and loopback always pass.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from functools import lru_cache

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_agent.config.schema import ApiConfig

WILDCARD_BINDS = {"0.0.0.0", "::", ""}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI / ReDoc load their scripts from a CDN; they get the framing headers but not the CSP
_DOC_PATHS = ("/docs", "/redoc")


def host_name(header: str) -> str:
    """The name part of a Host header, lower case, without the port or IPv6 brackets."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=8)
def allowed_host_names(bind: str, configured: tuple[str, ...] | None) -> frozenset[str]:
    """Loopback names and the bind address always; then api.allowed_hosts, or by default this
    machine's hostname and fully qualified name."""
    names = set(LOOPBACK_NAMES)
    if bind not in WILDCARD_BINDS:
        names.add(bind.lower())
    if configured is None:
        names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
    else:
        names.update(host_name(h) for h in configured)
    return frozenset(n for n in names if n)


def host_allowed(header: str, cfg: ApiConfig) -> bool:
    name = host_name(header)
    configured = tuple(cfg.allowed_hosts) if cfg.allowed_hosts is not None else None
    if name in allowed_host_names(cfg.bind, configured):
        return True
    # bound to every address: any of the box's IP literals may be used, and no IP can be rebound
    return cfg.bind in WILDCARD_BINDS and _is_ip(name)


class HostCheckMiddleware:
    """400 for a request whose Host header is not one of the allowed names (read live from config)."""

    def __init__(self, app: ASGIApp, api_config: Callable[[], ApiConfig]):
        self.app = app
        self.api_config = api_config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) != 1 or not host_allowed(hosts[0], self.api_config()):
            body = json.dumps(
                {"detail": "unknown Host header; add the name you use to api.allowed_hosts"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Adds CSP (frame-ancestors 'none'), X-Frame-Options: DENY, nosniff and no-referrer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path", "").startswith(_DOC_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                csp = "frame-ancestors 'none'" if docs else CSP
                headers.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
