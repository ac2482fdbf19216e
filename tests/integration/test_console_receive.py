"""`nightwatch-control-room receive` as a real process with its console: an event a box publishes
to a real Mosquitto appears in the console's list and is pushed on its live stream; the process
stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest
import yaml
from fixtures.control_room import OPERATOR
from fixtures.ports import free_port
from mosquitto import Mosquitto, make_event, require_mosquitto, wait_for

from edge_agent.api.auth import hash_password
from edge_agent.config.loader import ConfigError
from edge_agent.config.schema import MqttConfig
from edge_agent.control_room.config import load_receiver_config
from edge_agent.publish.mqtt import MqttPublisher


def test_the_local_example_asks_for_a_real_hash(repo_root):
    with pytest.raises(ConfigError, match=r"console\.operators\.0\.password_hash .*hash-password"):
        load_receiver_config(repo_root / "configs" / "control-room.local.yaml")


@pytest.mark.slow
def test_console_lists_and_streams_what_the_receiver_stores(tmp_path):
    require_mosquitto()
    port = free_port()
    with Mosquitto(tmp_path) as broker:
        cfg = tmp_path / "control-room.yaml"
        cfg.write_text(yaml.safe_dump({
            "mqtt": {"port": broker.port, "client_id": "console-recv"},
            "store_dir": str(tmp_path / "received"),
            "console": {"enabled": True, "port": port,
                        "operators": [{"name": OPERATOR[0], "password_hash": hash_password(OPERATOR[1]),
                                       "role": "operator"}]},
        }))
        proc = subprocess.Popen([sys.executable, "-m", "edge_agent.control_room.cli", "receive", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            def up() -> bool:
                try:
                    return httpx.get(url + "/", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, 30, what="the console")
            wait_for(lambda: "Received SUBSCRIBE from console-recv" in broker.log_tail(200), 30, what="subscribed")
            client = httpx.Client(base_url=url, timeout=10)
            assert client.post("/api/login", json={"name": OPERATOR[0], "password": OPERATOR[1]}).status_code == 200
            assert client.get("/api/events").json()["total"] == 0

            pushed: list[dict] = []

            def listen() -> None:
                with client.stream("GET", "/api/stream", timeout=30) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: "):
                            pushed.append(json.loads(line[6:]))
                            return

            t = threading.Thread(target=listen, daemon=True)
            t.start()
            pub = MqttPublisher(MqttConfig(port=broker.port, spool_dir=tmp_path / "spool",
                                           home_assistant_discovery=False), "site1", ["cam1"])
            pub.start()
            ev = make_event(n=3, faces=1)
            pub.publish_event(ev)
            wait_for(lambda: pushed, 20, what="the live update")
            assert pushed[0]["event_id"] == ev.event_id and pushed[0]["phase"] == "new"
            listed = client.get("/api/events").json()
            assert [e["event_id"] for e in listed["events"]] == [ev.event_id] and listed["events"][0]["faces"] == 1
            pub.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert f"operators' console on {url}" in out
