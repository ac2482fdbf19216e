"""`edge-agent receive --config FILE` as a real process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import yaml
from mosquitto import Mosquitto, make_event, wait_for

from edge_agent.config.schema import MqttConfig
from edge_agent.control_room.config import load_receiver_config
from edge_agent.publish.mqtt import MqttPublisher

KEY = "cli-site-key-0123456789abc"


def receiver_cmd(config) -> list[str]:
    return [sys.executable, "-m", "edge_agent", "receive", "--config", str(config)]


def test_example_config_is_valid(repo_root):
    cfg = load_receiver_config(repo_root / "configs" / "receiver.example.yaml")
    assert cfg.mqtt.tls is not None and set(cfg.sites) == {"site1", "site2"}


def test_bad_config_is_refused_with_the_key_named(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("mqtt:\n  port: 99999\nstore_dir: x\nsites:\n  site1: {}\n")
    proc = subprocess.run(receiver_cmd(bad), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "mqtt.port (line 2)" in proc.stdout and "sites.site1" in proc.stdout


def test_receive_stores_signed_events_and_alerts_and_stops_on_sigterm(tmp_path):
    key_file = tmp_path / "site1.key"
    key_file.write_text(KEY + "\n")
    with Mosquitto(tmp_path) as broker:
        cfg = tmp_path / "receiver.yaml"
        store = tmp_path / "received"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "mqtt": {"port": broker.port, "client_id": "cli-recv"},
                    "store_dir": str(store),
                    "sites": {"site1": {"hmac_key_file": str(key_file)}},
                    "require_signature": True,
                }
            )
        )
        proc = subprocess.Popen(
            receiver_cmd(cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            wait_for(lambda: (store / "index.sqlite3").exists(), 30, what="the index")
            wait_for(lambda: "Received SUBSCRIBE from cli-recv" in broker.log_tail(200), 30, what="subscribed")
            os.environ["NW_CLI_KEY"] = KEY
            pub = MqttPublisher(
                MqttConfig(port=broker.port, spool_dir=tmp_path / "spool", hmac_key_env="NW_CLI_KEY"), "site1", ["cam1"]
            )
            pub.start()
            pub.publish_event(make_event(n=3, faces=1))
            pub.publish_alert(None, {"kind": "disk_low", "message": "spool disk 95% full"})
            db = sqlite3.connect(store / "index.sqlite3")

            def counts():
                return (
                    db.execute("SELECT count(*) FROM images WHERE status='ok'").fetchone()[0],
                    db.execute("SELECT count(*) FROM alerts WHERE signature='valid'").fetchone()[0],
                )

            wait_for(lambda: counts() == (4, 1), 30, what="4 images and 1 alert")
            pub.close()
            assert db.execute("SELECT signature, flag FROM events").fetchall() == [("valid", None)]
            assert db.execute("SELECT camera FROM alerts").fetchall() == [(None,)]
            db.close()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            os.environ.pop("NW_CLI_KEY", None)
            proc.kill()
        assert proc.returncode == 0, out
        assert "stored event site1/cam1/" in out and "stopping the receiver" in out
        assert KEY not in out
