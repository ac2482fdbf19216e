"""`edge-agent run` serves its config API in-process: health, metrics and a live change that
reaches both the running agent and the YAML file."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from fixtures.ports import free_port
from test_agent_run import agent_cmd, write_config

from edge_agent.api.auth import hash_password
from edge_agent.demo import generate_night_clip

pytestmark = pytest.mark.slow




def _call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_agent_serves_api_and_applies_a_live_change(tmp_path, models_dir):
    clip = generate_night_clip(tmp_path / "clip.avi", 320, 180, 10.0, 3.0, person=None)
    port = free_port()
    cfg_path = write_config(
        tmp_path / "agent.yaml", models_dir, tmp_path / "events", {"file": str(clip.path), "loop": True},
        api={"bind": "127.0.0.1", "port": port, "auth": {"password_hash": hash_password("installer-pw")}},
    )
    proc = subprocess.Popen(agent_cmd(cfg_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = _call(f"{base}/api/health")
                break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert status == 200, body
        assert json.loads(body)["status"] in {"ok", "degraded"}

        assert _call(f"{base}/metrics")[0] == 401  # the live motion state is behind the login

        # unauthenticated change refused; authenticated change applied and saved
        assert _call(f"{base}/api/cameras/cam1", "PATCH", {"motion": {"sensitivity": 0.9}})[0] == 401
        status, body = _call(f"{base}/api/auth/login", "POST", {"password": "installer-pw"})
        assert status == 200, body
        token = json.loads(body)["access_token"]
        status, metrics = _call(f"{base}/metrics", token=token)
        assert status == 200 and b"frames" in metrics
        status, body = _call(f"{base}/api/cameras/cam1", "PATCH", {"motion": {"sensitivity": 0.9}}, token)
        assert status == 200, body
        on_disk = yaml.safe_load(cfg_path.with_name("agent.local.yaml").read_text())  # the box's overlay
        assert on_disk["cameras"] == [{"name": "cam1", "motion": {"sensitivity": 0.9}}]
        status, body = _call(f"{base}/api/cameras/cam1", token=token)
        assert json.loads(body)["motion"]["sensitivity"] == 0.9
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
