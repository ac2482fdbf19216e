"""Alerts end to end through the Agent: generated clip file -> capture -> motion gate + health
monitor -> publisher. The IR switch clip is partial enough (gain 1.25) that the motion gate alone
does not see a lighting jump, so only the monitor's re-baseline keeps it from firing motion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fixtures.health_clips import FAST_HEALTH, write_clip

from edge_agent.app import Agent
from edge_agent.config.loader import parse_config
from edge_agent.metrics import AgentMetrics
from edge_agent.pipeline.worker import Stages
from edge_agent.publish.local import LocalDirectoryPublisher

FAST = FAST_HEALTH


def agent_config(clip: Path, out: Path, health: dict):
    data = {
        "site": "lab",
        "cameras": [{"name": "cam", "source": {"file": str(clip)}, "health": health}],
        "publish": {"local": {"dir": str(out)}},
        "api": {"enabled": False},
        "state_dir": str(out.parent / "state"),
    }
    return parse_config(yaml.safe_dump(data))


def run(cfg, out: Path, during=None) -> Agent:
    agent = Agent(cfg, publisher=LocalDirectoryPublisher(out), stages=Stages())
    agent.start()
    try:
        deadline = time.monotonic() + 60
        while not agent.wait(0.1):
            assert time.monotonic() < deadline, "the clip did not finish"
            if during is not None:
                during(agent)
    finally:
        agent.stop()
    return agent


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def ir_clip(tmp_path_factory) -> Path:
    day, night = {"walkers": 0}, {"walkers": 0, "ir": True, "ir_gain": 1.25}
    return write_clip(tmp_path_factory.mktemp("clips") / "ir.avi", [(2.5, day), (3.0, night), (2.5, day)])


def test_ir_switch_gives_a_day_night_alert_and_no_motion_event(tmp_path, ir_clip):
    seen = {"state": [], "metrics": b""}

    def during(agent):
        state = agent.stats["cam"].state.get("alerts") or []
        if state and not seen["state"]:
            seen["state"] = state
            seen["metrics"] = AgentMetrics(lambda: agent.stats).render()[0]

    out = tmp_path / "on"
    agent = run(agent_config(ir_clip, out, FAST), out, during)
    alerts = jsonl(out / "alerts.jsonl")
    assert [(a["type"], a["phase"]) for a in alerts] == [("day_night", "start"), ("day_night", "end")]
    assert alerts[0]["details"]["mode"] == "night" and alerts[0]["camera"] == "cam"
    assert alerts[0]["snapshot"]["sha256"] and 2.0 <= alerts[1]["duration_s"] <= 4.5
    assert agent.stats["cam"].get("motion_events") == 0 and not jsonl(out / "motion.jsonl")
    assert agent._cameras["cam"].loop.health.switches == 2
    assert [a["type"] for a in seen["state"]] == ["day_night"]  # the status the web page shows
    assert b'nightwatch_alert_active{camera="cam",severity="info",type="day_night"} 1.0' in seen["metrics"]
    assert agent.stats["cam"].state["alerts"] == []

    # the same clip without the monitor: the gate alone fires motion on the switch
    out = tmp_path / "off"
    agent = run(agent_config(ir_clip, out, {**FAST, "enabled": False}), out)
    assert agent.stats["cam"].get("motion_events") >= 1 and not jsonl(out / "alerts.jsonl")


def test_covered_lens_through_the_agent(tmp_path):
    clip = write_clip(tmp_path / "cover.avi", [(2.5, {}), (2.5, {"covered": True}), (2.0, {})])
    out = tmp_path / "out"
    run(agent_config(clip, out, FAST), out)
    alerts = jsonl(out / "alerts.jsonl")
    assert [(a["type"], a["phase"]) for a in alerts] == [("covered", "start"), ("covered", "end")]
    assert alerts[0]["severity"] == "critical" and alerts[0]["snapshot"]["width"] == 320
