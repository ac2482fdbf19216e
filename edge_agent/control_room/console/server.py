"""Serve the operators' console beside the receiver (uvicorn in a thread of the receiver process)."""

from __future__ import annotations

import logging

from edge_agent.api.server import ApiServer, serve_app
from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.console.app import create_console
from edge_agent.control_room.store import open_store

log = logging.getLogger(__name__)


def start_console(cfg: ReceiverConfig) -> ApiServer:
    """The console on console.bind:console.port, reading store_dir through its own connection."""
    c = cfg.console
    handle = serve_app(create_console(open_store(cfg), c), c.bind, c.port, "console")
    log.info("operators' console on %s (%d account(s))", handle.url, len(c.operators))
    return handle
