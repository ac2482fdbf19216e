"""A crash leaves open events and the 'running' marker in state_dir; the next start closes the events
(end_reason agent_restarted) and raises agent_restarted. A clean stop leaves neither, and the last
stats message counts everything the worker published."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest
import yaml

from edge_agent.app import Agent
from edge_agent.config.loader import parse_config
from edge_agent.pipeline.jobs import EndJob
from edge_agent.pipeline.open_events import OpenEvents
from edge_agent.pipeline.restart import StateDirError
from edge_agent.pipeline.worker import Stages
from edge_agent.publish.event_json import encode_event
from edge_agent.records import Frame, Job, MotionResult
from edge_agent.run import run_agent

T0 = 1_700_000_000.0


class Recorder:
    """A Publisher that keeps the event JSON documents, stats and alerts it is given."""

    def __init__(self, slow_supervisor_stats: bool = False):
        self.events: list[dict] = []
        self.stats: list[dict] = []
        self.alerts: list[dict] = []
        self.closed = False
        self.slow = slow_supervisor_stats
        self.supervisor_in = threading.Event()
        self.final_seen = threading.Event()
        self.supervisor_out = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def publish_event(self, event) -> None:
        doc, _ = encode_event(event)
        with self._lock:
            self.events.append(doc)

    def publish_motion(self, camera, active) -> None:
        pass

    def publish_stats(self, camera, stats) -> None:
        if self.slow and threading.current_thread().name == "supervisor":
            self.supervisor_in.set()  # a slow publish: the snapshot was taken before we got here
            self.final_seen.wait(3.0)
        with self._lock:
            self.stats.append(dict(stats))
        if threading.current_thread().name != "supervisor":
            self.final_seen.set()
        else:
            self.supervisor_out.set()

    def publish_alert(self, camera, alert) -> None:
        with self._lock:
            self.alerts.append(dict(alert))

    def close(self) -> None:
        self.closed = True


def config(tmp_path, **extra):
    data = {
        "site": "lab",
        # disabled: no capture thread; the tests feed the real job queue and worker directly
        "cameras": [{"name": "cam", "enabled": False, "source": {"file": str(tmp_path / "none.avi")}}],
        "publish": {"local": {"dir": str(tmp_path / "out")}},
        "api": {"enabled": False},
        "state_dir": str(tmp_path / "state"),
        **extra,
    }
    return parse_config(yaml.safe_dump(data))


def job(seq: int, phase: str = "update", event: str = "ev1") -> Job:
    img = np.full((36, 64, 3), 30, np.uint8)
    frame = Frame(camera="cam", seq=seq, ts=T0 + seq, image=img)
    motion = MotionResult(active=True, started=phase == "new", ended=False, boxes=[], changed_fraction=0.1)
    return Job(event_id=event, camera="cam", frame=frame, motion=motion, phase=phase)


def feed(agent: Agent, *jobs) -> None:
    for j in jobs:
        agent.jobs.put(j)
        assert agent.jobs.wait_idle(10)


def crash(agent: Agent) -> None:
    """The process dies: no stop(), nothing flushed or removed; only its threads are let go."""
    agent._stop_capture.set()
    agent._stop_workers.set()
    agent.jobs.close()
    for t in agent._worker_threads:
        t.join(5)


def restart_alerts(rec: Recorder) -> list[dict]:
    return [a for a in rec.alerts if a["type"] == "agent_restarted"]


def test_a_crash_mid_event_is_closed_at_the_next_start_with_an_alert(tmp_path):
    state = tmp_path / "state"
    first = Agent(config(tmp_path), publisher=Recorder(), stages=Stages())
    first.start()
    feed(first, job(5, "new"), job(7))
    time.sleep(1.05)  # updates are written at most once a second
    feed(first, job(9))
    assert (state / "running").is_file()
    on_disk = json.loads((state / "open_events.json").read_text())
    assert on_disk == {"ev1": {"camera": "cam", "site": "lab", "started_at": T0 + 5, "last_ts": T0 + 9,
                               "frame_seq": 9}}
    crash(first)
    del first

    rec = Recorder()
    second = Agent(config(tmp_path), publisher=rec, stages=Stages())
    second.start()
    try:
        ends = [d for d in rec.events if d["phase"] == "end"]
        assert len(rec.events) == len(ends) == 1
        end = ends[0]
        assert end["event_id"] == "ev1" and end["camera"] == "cam" and end["site"] == "lab"
        assert end["end_reason"] == "agent_restarted"
        assert end["ended_at"] == end["ts"] == T0 + 9 and end["started_at"] == T0 + 5
        assert end["frame_seq"] == 9
        alerts = restart_alerts(rec)
        assert [a["phase"] for a in alerts] == ["start", "end"]  # one-shot: nothing stays open
        assert alerts[0]["scope"] == "site" and alerts[0]["severity"] == "warning"
        assert alerts[0]["details"]["open_events_closed"] == 1
        assert "1 open event(s) closed" in alerts[0]["message"]
        assert second.site_alerts() == []
        assert json.loads((state / "open_events.json").read_text()) == {}
        assert second.stats["cam"].get("events_published") == 1  # the closing end is counted
    finally:
        second.stop()
    assert not (state / "running").exists()

    third_rec = Recorder()
    third = Agent(config(tmp_path), publisher=third_rec, stages=Stages())
    third.start()
    third.stop()
    assert third_rec.events == [] and restart_alerts(third_rec) == []


def test_a_clean_stop_leaves_no_marker_nor_open_events_and_no_alert_next_time(tmp_path):
    state = tmp_path / "state"
    rec = Recorder()
    agent = Agent(config(tmp_path), publisher=rec, stages=Stages())
    agent.start()
    feed(agent, job(1, "new"), job(2), EndJob("ev1", "cam", T0 + 1, T0 + 3, frame_seq=3))
    agent.stop()
    assert [d["phase"] for d in rec.events] == ["new", "update", "end"]
    assert all("end_reason" not in d for d in rec.events)  # only present when set
    assert not (state / "running").exists()
    assert json.loads((state / "open_events.json").read_text()) == {}

    rec2 = Recorder()
    again = Agent(config(tmp_path), publisher=rec2, stages=Stages())
    again.start()
    again.stop()
    assert rec2.events == [] and restart_alerts(rec2) == []


def test_the_last_stats_after_stop_count_every_published_event(tmp_path):
    rec = Recorder(slow_supervisor_stats=True)
    agent = Agent(config(tmp_path, pipeline={"stats_interval_s": 1}), publisher=rec, stages=Stages())
    agent.start()
    try:
        assert rec.supervisor_in.wait(5), "the supervisor published no stats"
        feed(agent, job(1, "new"), job(2), EndJob("ev1", "cam", T0 + 1, T0 + 3, frame_seq=3))
    finally:
        agent.stop()
    assert rec.supervisor_out.wait(5)  # whatever the supervisor had in hand has gone out
    assert agent.stats["cam"].get("events_published") == 3
    assert rec.stats[-1]["events_published"] == 3, [s["events_published"] for s in rec.stats]


def test_an_unclean_stop_without_open_events_still_raises_the_alert(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "running").write_text('{"pid": 4242, "started_at": 1700000000.0}')
    rec = Recorder()
    agent = Agent(config(tmp_path), publisher=rec, stages=Stages())
    agent.start()
    agent.stop()
    (start,) = [a for a in restart_alerts(rec) if a["phase"] == "start"]
    assert start["details"] == {"open_events_closed": 0, "previous_pid": 4242,
                                "previous_started_at": 1700000000.0}
    assert rec.events == []


def test_a_corrupt_open_events_file_is_named_moved_aside_and_treated_as_empty(tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir()
    (state / "open_events.json").write_text('{"ev1": {"camera": "cam", "site"')
    rec = Recorder()
    agent = Agent(config(tmp_path), publisher=rec, stages=Stages())
    with caplog.at_level(logging.ERROR):
        agent.start()
    agent.stop()
    assert str(state / "open_events.json") in caplog.text and "corrupt" in caplog.text
    aside = list(state.glob("open_events.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"ev1"')
    assert rec.events == [] and restart_alerts(rec) == []  # no marker: the last stop was clean


def test_updates_are_written_at_most_once_a_second_and_every_write_is_a_rename(tmp_path):
    now = [100.0]
    store = OpenEvents(tmp_path / "open_events.json", clock=lambda: now[0])
    store.load()
    store.opened("ev1", "cam", "lab", T0, T0, 1)

    def on_disk() -> dict:
        return json.loads((tmp_path / "open_events.json").read_text())

    store.updated("ev1", T0 + 0.5, 5)
    assert on_disk()["ev1"]["last_ts"] == T0  # within the second: not written yet
    now[0] += 1.0
    store.updated("ev1", T0 + 1.0, 10)
    assert on_disk()["ev1"]["last_ts"] == T0 + 1.0 and on_disk()["ev1"]["frame_seq"] == 10
    store.updated("ev1", T0 + 1.2, 12)
    store.flush()
    assert on_disk()["ev1"]["frame_seq"] == 12
    store.closed("ev1")
    assert on_disk() == {}
    assert [p.name for p in tmp_path.iterdir()] == ["open_events.json"]  # no temporary file left


def test_a_state_dir_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    agent = Agent(config(tmp_path, state_dir=str(blocker / "state")), publisher=Recorder(), stages=Stages())
    with pytest.raises(StateDirError, match=str(blocker / "state")):
        agent.start()

    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump({
        "site": "lab",
        "cameras": [{"name": "cam", "enabled": False, "source": {"file": "none.avi"}}],
        "models": {"dir": str(tmp_path / "no_models")},
        "publish": {"local": {"dir": str(tmp_path / "out")}},
        "api": {"enabled": False},
        "state_dir": str(blocker / "state"),
    }))
    t = time.monotonic()
    assert run_agent(cfg) == 1
    err = capsys.readouterr().err
    assert "cannot start" in err and str(blocker / "state") in err
    assert time.monotonic() - t < 30
