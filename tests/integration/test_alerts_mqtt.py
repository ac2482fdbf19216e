"""Health alerts through the Agent to a real Mosquitto; the control-room receiver stores both
phases of each alert with a valid signature and a snapshot that matches its hash."""

from __future__ import annotations

import json
import time

import yaml
from fixtures.health_clips import FAST_HEALTH as FAST
from fixtures.health_clips import write_clip
from mosquitto import Mosquitto, start_receiver, wait_for

from edge_agent.app import Agent
from edge_agent.config.loader import parse_config
from edge_agent.health.alerts import snapshot_bytes
from edge_agent.pipeline.worker import Stages

KEY = "alerts-site-key-0123456789abcdef"


def test_alerts_reach_mosquitto_and_the_receiver_stores_them(tmp_path, monkeypatch):
    monkeypatch.setenv("NW_ALERT_KEY", KEY)
    clip = write_clip(tmp_path / "cover.avi", [(2.5, {}), (2.5, {"covered": True}), (2.0, {})])
    with Mosquitto(tmp_path) as broker:
        rx = start_receiver(tmp_path / "received", broker.port, {"lab": KEY.encode()})
        try:
            cfg = parse_config(
                yaml.safe_dump(
                    {
                        "site": "lab",
                        "cameras": [{"name": "cam", "source": {"file": str(clip)}, "health": FAST}],
                        "publish": {
                            "sink": "mqtt",
                            "mqtt": {
                                "port": broker.port,
                                "spool_dir": str(tmp_path / "spool"),
                                "hmac_key_env": "NW_ALERT_KEY",
                                "home_assistant_discovery": False,
                            },
                        },
                        "api": {"enabled": False},
                        "state_dir": str(tmp_path / "state"),
                    }
                )
            )
            agent = Agent(cfg, stages=Stages())
            agent.start()
            deadline = time.monotonic() + 60
            while not agent.wait(0.1):
                assert time.monotonic() < deadline, "the clip did not finish"
            agent.stop()
            store = rx.store
            wait_for(lambda: len(store.query("SELECT * FROM alerts")) >= 2, 15, what="both alert messages")
            rows = store.query("SELECT * FROM alerts ORDER BY id")
        finally:
            rx.stop()
    docs = [json.loads(r["payload"]) for r in rows]
    assert [(d["type"], d["phase"]) for d in docs] == [("covered", "start"), ("covered", "end")]
    assert all(r["site"] == "lab" and r["camera"] == "cam" for r in rows)
    assert all(r["signature"] == "valid" and r["flag"] is None for r in rows)
    assert docs[0]["id"] == docs[1]["id"] and docs[0]["site"] == "lab"
    assert snapshot_bytes(docs[0])[:2] == b"\xff\xd8" and docs[1]["duration_s"] > 1.5
