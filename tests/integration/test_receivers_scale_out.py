"""Receivers that scale out and lose nothing: 3 sites publish 300 signed events with images through a
real Mosquitto; the receivers (real `nightwatch-control-room receive` processes) share one MQTT 5
shared subscription and one store; one of them is killed with SIGKILL mid-run and restarted.
Every event is stored exactly once, every image is verified, none is lost. On PostgreSQL +
SeaweedFS with 2 receivers, and on the embedded default (SQLite + folder) with one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from mosquitto import Mosquitto, make_event, require_mosquitto, wait_for

from edge_agent.config.schema import MqttConfig
from edge_agent.control_room.config import load_receiver_config
from edge_agent.control_room.store import open_store
from edge_agent.publish.mqtt import MqttPublisher

SITES = ("north", "south", "east")
PER_SITE = 100  # 300 events, each with its original, enhanced and one face crop + its SR


def start_receiver(cfg_path, instance: int, log_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.control_room.cli", "receive", "--config", str(cfg_path),
         "--instance", str(instance)],
        stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def subscribed(broker, proc, instance: int, log_path) -> bool:
    """Whether receiver `instance` has subscribed; a receiver that died fails at once, with its log."""
    if proc.poll() is not None:
        raise AssertionError(f"receiver {instance} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
    return f"Received SUBSCRIBE from rx-{instance}" in broker.log_tail(20000)


@pytest.mark.slow
def test_receivers_share_the_load_and_a_sigkill_loses_nothing(tmp_path, storage):
    require_mosquitto()
    n_receivers = 1 if not storage else 2
    keys = {}
    for site in SITES:
        keys[site] = tmp_path / f"{site}.key"
        keys[site].write_text(f"key-of-{site}-0123456789abcdef\n")
    with Mosquitto(tmp_path) as broker:
        cfg_path = tmp_path / "control-room.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "mqtt": {"port": broker.port, "client_id": "rx", "share_group": "receivers"},
            "store_dir": str(tmp_path / "received"),
            "sites": {s: {"hmac_key_file": str(k)} for s, k in keys.items()},
            "require_signature": True,
            "storage": storage,
        }))
        cfg = load_receiver_config(cfg_path)
        logs = [tmp_path / f"rx{i}.log" for i in range(1, n_receivers + 1)]
        procs = [start_receiver(cfg_path, i, logs[i - 1]) for i in range(1, n_receivers + 1)]
        store = None
        pubs = []
        try:
            for i in range(1, n_receivers + 1):
                wait_for(lambda i=i: subscribed(broker, procs[i - 1], i, logs[i - 1]), 90,
                         what=f"receiver {i} subscribed")
            store = open_store(cfg)
            for site in SITES:
                pub = MqttPublisher(MqttConfig(port=broker.port, spool_dir=tmp_path / f"spool-{site}",
                                               hmac_key_file=keys[site], home_assistant_discovery=False),
                                    site, ["cam1"])
                pub.start()
                pubs.append(pub)

            def stored() -> int:
                return store.query("SELECT count(*) AS n FROM events")[0]["n"]

            killed_at = None
            for k in range(PER_SITE):
                for pub in pubs:
                    pub.publish_event(make_event(n=k, faces=1, size=(32, 40)))
                if killed_at is None and k == PER_SITE // 3:
                    wait_for(lambda: stored() >= 30, 60, what="the first events stored")
                    procs[0].send_signal(signal.SIGKILL)  # mid-run: messages in flight, unacknowledged
                    procs[0].wait()
                    killed_at = stored()
                    time.sleep(1.0)
                    procs[0] = start_receiver(cfg_path, 1, logs[0])
            total = len(SITES) * PER_SITE
            wait_for(lambda: stored() >= total, 180, interval=0.5, what=f"{total} events stored")
            wait_for(lambda: store.query("SELECT count(*) AS n FROM images WHERE status = 'ok'")[0]["n"] >= 4 * total,
                     120, interval=0.5, what="every image verified")
            time.sleep(1.0)  # anything still coming would be a duplicate

            events = store.query("SELECT site, event_id, phase, seq, signature, flag FROM events")
            assert len(events) == total
            assert {(e["site"], e["event_id"], e["phase"], e["seq"]) for e in events}.__len__() == total
            per_site = {s: sum(1 for e in events if e["site"] == s) for s in SITES}
            assert per_site == {s: PER_SITE for s in SITES}
            assert all(e["signature"] == "valid" and e["flag"] is None for e in events)
            images = store.query("SELECT status, flag FROM images")
            assert len(images) == 4 * total
            assert all(i["status"] == "ok" and i["flag"] is None for i in images)
            assert 0 < killed_at < total  # the kill really happened mid-run
            if n_receivers == 2:  # both shared the work: each log shows stored events
                for log in logs[1:]:
                    assert "stored event" in log.read_text()
        finally:
            for pub in pubs:
                pub.close()
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        p.kill()
            if store is not None:
                store.close()
