"""A camera stream that disappears and comes back: the agent reconnects within 5 s and never exits.

The camera is a local MJPEG-over-HTTP test server (tests/fixtures/mjpeg_server.py) that is
stopped and started again on the same port; the agent runs as `edge-agent run` in a subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(pred, timeout: float, proc: subprocess.Popen, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the agent exited (rc {proc.returncode}) while waiting for {what}"
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_agent_reconnects_within_5_s_of_the_stream_coming_back(tmp_path, models_dir):
    from fixtures.mjpeg_server import MjpegServer, moving_box_frames

    server = MjpegServer(frames=moving_box_frames(20), fps=10).start()
    out = tmp_path / "events"
    cfg = {
        "site": "lab",
        "cameras": [
            {
                "name": "gate",
                "source": {"url": server.url, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0},
                "health": {"stream_lost_after_s": 0, "stream_back_after_s": 0},  # undebounced alerts
            }
        ],
        "models": {"dir": str(models_dir)},
        "pipeline": {"stats_interval_s": 1},
        "publish": {"sink": "local", "local": {"dir": str(out)}},
        "api": {"enabled": False},
        "state_dir": str(tmp_path / "state"),
    }
    cfg_path = tmp_path / "agent.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(cfg_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    alerts = out / "alerts.jsonl"
    try:
        # connected and reading
        wait_for(lambda: any(s["stats"]["frames"] > 5 for s in jsonl(out / "stats.jsonl")), 30, proc, "frames")
        server.stop()  # the camera disappears
        wait_for(lambda: any(a["type"] == "stream_lost" and a["phase"] == "start" for a in jsonl(alerts)), 15, proc, "offline alert")
        time.sleep(2.0)  # stays away for a while; the agent keeps retrying and does not exit
        assert proc.poll() is None
        back = time.time()
        server.start()  # ... and comes back on the same address
        online = wait_for(
            lambda: [a for a in jsonl(alerts) if a["type"] == "stream_lost" and a["phase"] == "end" and a["ts"] >= back - 0.1],
            10,
            proc,
            "reconnect",
        )
        delay = online[0]["ts"] - back
        print(f"reconnected {delay:.2f} s after the stream came back")
        assert delay <= 5.0, f"reconnected after {delay:.1f} s"
        sent_before = server.frames_sent
        wait_for(lambda: server.frames_sent > sent_before + 5, 5, proc, "frames after the reconnect")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "recovered after" in err
    final = jsonl(out / "stats.jsonl")[-1]["stats"]
    assert final["reconnects"] >= 1
