"""Run the config API with uvicorn in a thread of the agent process.

handle = start_api_server(agent, store)          # api settings from store.config.api
print(handle.port); ...; handle.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from edge_agent.api.app import create_app
from edge_agent.api.deps import AgentPort
from edge_agent.config.schema import ApiConfig
from edge_agent.config.store import ConfigStore

log = logging.getLogger(__name__)


class ApiServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket):
        self._server = server
        self._thread = thread
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._server.started

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        try:
            self._sock.close()
        except OSError:
            pass


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def serve_app(app, bind: str, port: int, name: str, *, trusted_proxies: list[str] | tuple = (),
              startup_timeout: float = 15.0) -> ApiServer:
    """Bind bind:port (0 = a free port), serve app with uvicorn in a daemon thread, return once it accepts."""
    sock = _bind(bind, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # request lines are not needed and may carry query strings
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
        # X-Forwarded-For is believed only from the trusted proxies; by default nobody (uvicorn's own
        # default trusts loopback, which lets any local client pick the address the throttle keys on)
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the {name} did not start on {bind}:{port}")
        time.sleep(0.02)
    return ApiServer(server, thread, sock)


def start_api_server(
    agent: AgentPort, store: ConfigStore, api_cfg: ApiConfig | None = None, *, startup_timeout: float = 15.0
) -> ApiServer:
    """The box's config API on api.bind:api.port."""
    cfg = api_cfg or store.config.api
    handle = serve_app(create_app(store, agent), cfg.bind, cfg.port, "config-api",
                       trusted_proxies=cfg.trusted_proxies, startup_timeout=startup_timeout)
    log.info("config API listening on %s", handle.url)
    return handle
