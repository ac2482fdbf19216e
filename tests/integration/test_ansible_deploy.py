"""Run the real playbook against this machine (connection local) into a temporary root prefix.

Only the systemd and user steps are switched off (no systemd runs here). Then the agent is started
from the deployed virtualenv with the deployed config and must answer healthy on its API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow

if shutil.which("ansible-playbook", path=str(BIN)) is None:
    pytest.skip("ansible-playbook is not installed (dev extra)", allow_module_level=True)




def _write_clip(path: Path) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(20):
        frame = np.full((240, 320, 3), 30, np.uint8)
        cv2.rectangle(frame, (10 + i * 5, 80), (60 + i * 5, 200), (90, 90, 90), -1)
        writer.write(frame)
    writer.release()


class Deployment:
    def __init__(self, tmp: Path, models: Path):
        self.tmp = tmp
        self.root = tmp / "root"
        self.port = free_port()
        self.clip = tmp / "clip.avi"
        _write_clip(self.clip)
        self.models = models
        self.inventory = tmp / "inventory.yml"
        self.inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "children": {
                            "nvr": {
                                "hosts": {
                                    "localhost": {
                                        "ansible_connection": "local",
                                        "ansible_python_interpreter": sys.executable,
                                    }
                                }
                            }
                        }
                    }
                }
            )
        )

    def cameras(self, **extra) -> list[dict]:
        cam = {"name": "test-cam", "source": {"file": str(self.clip), "loop": True}}
        cam.update(extra)
        return [cam]

    def play(self, cameras: list[dict] | None = None) -> subprocess.CompletedProcess:
        extra = {
            "edge_agent_root": str(self.root),
            "edge_agent_manage_user": False,
            "edge_agent_manage_service": False,
            "edge_agent_python": sys.executable,
            "edge_agent_models_src": str(self.models),
            "edge_agent_api_bind": "127.0.0.1",
            "edge_agent_api_port": self.port,
            "edge_agent_publish_sink": "local",
            "edge_agent_mqtt": {},
            "edge_agent_api_password_hash": "",
            "edge_agent_cameras": cameras if cameras is not None else self.cameras(),
            "ansible_become": False,
        }
        extra_file = self.tmp / "extra.json"
        extra_file.write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=f"{BIN}:{os.environ.get('PATH', '')}")
        return subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory), str(ANSIBLE / "site.yml"),
             "--limit", "localhost", "-e", f"@{extra_file}"],
            cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=900,
        )

    @property
    def config_file(self) -> Path:
        return self.root / "etc" / "nightwatch" / "agent.yaml"

    @property
    def venv_bin(self) -> Path:
        return self.root / "opt" / "nightwatch" / "venv" / "bin"


def _recap(output: str) -> dict[str, int]:
    m = re.search(r"^localhost\s*:\s*(.*)$", output, re.MULTILINE)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, models_dir) -> Deployment:
    dep = Deployment(tmp_path_factory.mktemp("ansible"), models_dir)
    first = dep.play()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    return dep


def test_first_run_deploys_venv_models_and_valid_config(deployment: Deployment):
    assert (deployment.venv_bin / "edge-agent").is_file()
    manifest = yaml.safe_load((deployment.root / "opt/nightwatch/models/manifest.yaml").read_text())
    assert manifest["models"], "no model deployed"
    cfg = yaml.safe_load(deployment.config_file.read_text())
    assert cfg["cameras"][0]["name"] == "test-cam"
    assert cfg["api"]["port"] == deployment.port
    check = subprocess.run([str(deployment.venv_bin / "edge-agent"), "check-config", str(deployment.config_file)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_second_run_changes_nothing(deployment: Deployment):
    again = deployment.play()
    assert again.returncode == 0, again.stdout[-4000:]
    recap = _recap(again.stdout)
    assert recap["changed"] == 0, again.stdout[-4000:]
    assert recap["failed"] == 0


def test_invalid_camera_fails_before_the_running_config_is_touched(deployment: Deployment):
    before = deployment.config_file.read_bytes()
    bad = deployment.cameras(motion={"threshold": 9999})
    result = deployment.play(cameras=bad)
    assert result.returncode != 0
    assert "threshold" in result.stdout + result.stderr
    assert deployment.config_file.read_bytes() == before


def test_deployed_agent_answers_healthy(deployment: Deployment):
    proc = subprocess.Popen(
        [str(deployment.venv_bin / "edge-agent"), "run", "--config", str(deployment.config_file)],
        cwd=deployment.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{deployment.port}/api/health", timeout=2) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert body is not None, "agent API never answered"
        assert body.get("status") in {"ok", "degraded"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
