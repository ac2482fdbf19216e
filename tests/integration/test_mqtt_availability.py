"""The site's availability topic: 'online' on connect, 'offline' by the last will when the agent
dies (SIGKILL), 'stopped' on a clean exit. The agent is a real process running MqttPublisher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mosquitto import Mosquitto, Sniffer, wait_for

AVAILABILITY = "nightwatch/site1/availability"

AGENT = textwrap.dedent(
    """
    import json, logging, signal, sys, threading
    from edge_agent.config.schema import MqttConfig
    from edge_agent.publish.mqtt import MqttPublisher

    logging.basicConfig(level=logging.INFO)
    pub = MqttPublisher(MqttConfig.model_validate(json.loads(sys.argv[1])), "site1", ["cam1"])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    pub.start()
    pub.publish_motion("cam1", True)
    done.wait()
    pub.close()
    print("closed", flush=True)
    """
)


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path) as b:
        yield b


def start_agent(tmp_path, port) -> subprocess.Popen:
    cfg = {"port": port, "spool_dir": str(tmp_path / "spool"), "keepalive_s": 5, "home_assistant_discovery": False}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, json.dumps(cfg)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_sigkill_leaves_offline_through_the_last_will(tmp_path, broker):
    sniffer = Sniffer(broker.port, "nightwatch/#")
    agent = start_agent(tmp_path, broker.port)
    try:
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"online"], 30, what="online")
        wait_for(lambda: sniffer.payloads("nightwatch/site1/cam1/motion") == [b"ON"], 10, what="motion ON")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"offline"], 20, what="last will")
    finally:
        agent.kill()
        sniffer.close()
    # retained: a late subscriber (the control room after its own restart) sees it too
    late = Sniffer(broker.port, AVAILABILITY)
    try:
        wait_for(lambda: late.messages, 5, what="retained availability")
        assert late.messages == [(AVAILABILITY, b"offline", True)]
    finally:
        late.close()


def test_clean_exit_says_stopped(tmp_path, broker):
    sniffer = Sniffer(broker.port, AVAILABILITY)
    agent = start_agent(tmp_path, broker.port)
    try:
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"online"], 30, what="online")
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=30)
        assert agent.returncode == 0, out.decode()
        assert b"closed" in out
        wait_for(lambda: sniffer.payloads(AVAILABILITY)[-1:] == [b"stopped"], 10, what="stopped")
        # a clean disconnect must not fire the last will afterwards
        agent_gone = len(sniffer.payloads(AVAILABILITY))
        time.sleep(1)
        assert len(sniffer.payloads(AVAILABILITY)) == agent_gone
    finally:
        agent.kill()
        sniffer.close()
