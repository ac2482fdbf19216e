"""`edge-agent run --config FILE`: load the config, build the Agent (app.py), serve the config
API beside it, run until SIGINT/SIGTERM or the end of every clip, stop cleanly."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from edge_agent.app import Agent
from edge_agent.builders import StartupError
from edge_agent.config.loader import ConfigError, load_config
from edge_agent.inference.base import ModelError
from edge_agent.pipeline.restart import StateDirError

log = logging.getLogger("edge_agent.app")

def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def run_agent(config_path: str | Path) -> int:
    """`edge-agent run --config FILE`. Exit codes: 0 clean stop or end of every clip,
    2 config refused (nothing started), 1 a part could not start (models, publisher)."""
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(cfg.logging.level)
    from edge_agent.config.store import ConfigStore

    store = ConfigStore(config_path, cfg)
    try:
        agent = Agent(cfg, store=store)
        agent.run_state.prepare()
    except (ModelError, StartupError, StateDirError) as exc:
        print(f"edge-agent: cannot start: {exc}", file=sys.stderr)
        return 1
    api = None
    if cfg.api.enabled:
        from edge_agent.api.server import start_api_server

        try:
            api = start_api_server(agent, store, cfg.api)
        except (OSError, RuntimeError) as exc:
            print(f"edge-agent: cannot start the config API on {cfg.api.bind}:{cfg.api.port}: {exc}",
                  file=sys.stderr)
            return 1

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        agent.start()
        while not stop.is_set():
            if agent.wait(0.2):
                log.info("every source finished and the queue is drained")
                break
    finally:
        agent.stop()
        if api is not None:
            api.stop()
        for s, h in old.items():
            signal.signal(s, h)
    for name, st in agent.stats.items():
        snap = st.snapshot()
        log.info(
            "camera %s: %d frames, %d motion events, %d events published, %d dropped jobs, %d errors",
            name,
            snap["frames"],
            snap["motion_events"],
            snap["events_published"],
            snap["jobs_dropped"],
            snap["errors"],
        )
    return 0
