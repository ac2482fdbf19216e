"""A torn record in the MQTT spool (power cut while it was written, disk damage) is moved to
<spool_dir>/bad/, never sent, and counted where an operator looks: `mqtt.spool_quarantined` in the
camera's stats message and `nightwatch_spool_quarantined_total` on /metrics. The real agent runs a
looping clip against a real Mosquitto and serves its real API."""

from __future__ import annotations

import json

import httpx
import yaml
from fixtures.health_clips import write_clip
from mosquitto import Mosquitto, Sniffer, wait_for

from edge_agent.api.server import start_api_server
from edge_agent.app import Agent
from edge_agent.config.store import ConfigStore
from edge_agent.pipeline.worker import Stages
from edge_agent.publish.spool import Message, Spool

STATS = "nightwatch/lab/cam/stats"


def spool_with_a_torn_record(spool_dir) -> str:
    """Three records left by an earlier run; the middle one lost its tail. Returns its file name."""
    spool = Spool(spool_dir, 10 * 1024 * 1024)
    for n in range(3):
        spool.append([Message("nightwatch/lab/cam/event", json.dumps({"n": n}).encode(), 1)])
    torn = sorted(spool_dir.glob("*.rec"))[1]
    torn.write_bytes(torn.read_bytes()[:-40])
    return torn.name


def write_config(tmp_path, clip, publish: dict) -> ConfigStore:
    data = {
        "site": "lab",
        "cameras": [{"name": "cam", "source": {"file": str(clip), "loop": True}}],
        "pipeline": {"stats_interval_s": 1},
        "publish": publish,
        "api": {"bind": "127.0.0.1", "port": 0, "monitoring": ["127.0.0.1"]},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return ConfigStore(path)


def test_torn_spool_record_is_quarantined_and_counted_in_stats_and_metrics(tmp_path):
    torn_name = spool_with_a_torn_record(tmp_path / "spool")
    clip = write_clip(tmp_path / "clip.avi", [(2.0, {})])
    with Mosquitto(tmp_path) as broker:
        sniffer = Sniffer(broker.port, "nightwatch/#")
        mqtt = {"port": broker.port, "spool_dir": str(tmp_path / "spool"), "home_assistant_discovery": False}
        store = write_config(tmp_path, clip, {"sink": "mqtt", "mqtt": mqtt})
        agent = Agent(store.config, stages=Stages(), store=store)
        agent.start()
        api = start_api_server(agent, store)
        try:
            # the two good records are replayed, in order; the torn one is not sent at all
            wait_for(lambda: len(sniffer.payloads("nightwatch/lab/cam/event")) >= 2, 20, what="the good records")
            assert [json.loads(p)["n"] for p in sniffer.payloads("nightwatch/lab/cam/event")] == [0, 2]
            assert (tmp_path / "spool" / "bad" / torn_name).is_file()

            def stats_with_quarantine():
                docs = [json.loads(p) for p in sniffer.payloads(STATS)]
                return [d for d in docs if d["mqtt"].get("spool_quarantined") == 1]

            doc = wait_for(stats_with_quarantine, 20, what="stats saying one record was quarantined")[-1]
            assert doc["mqtt"]["spool_dropped"] == 0 and doc["mqtt"]["spool_records"] == 0

            text = httpx.get(f"{api.url}/metrics", timeout=10).text
            assert "# TYPE nightwatch_spool_quarantined_total counter" in text
            assert "\nnightwatch_spool_quarantined_total 1.0\n" in text
            assert "\nnightwatch_spool_dropped_total 0.0\n" in text  # counted, exported, none dropped
            assert "# TYPE nightwatch_spool_records gauge" in text
        finally:
            api.stop()
            agent.stop()
            sniffer.close()


def test_local_sink_exports_no_spool_metric(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", [(1.0, {})])
    store = write_config(tmp_path, clip, {"sink": "local", "local": {"dir": str(tmp_path / "events")}})
    agent = Agent(store.config, stages=Stages(), store=store)
    api = start_api_server(agent, store)
    try:
        text = httpx.get(f"{api.url}/metrics", timeout=10).text
        assert "nightwatch_frames_total" in text and "spool_quarantined" not in text
    finally:
        api.stop()
