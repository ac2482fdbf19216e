"""Run the real playbook against this machine (connection local) into a temporary root prefix.

Only the systemd and user steps are switched off (no systemd runs here). Then the agent is started
from the deployed virtualenv with the deployed config and must answer healthy on its API; masks and
zones drawn through its web API survive the next deploy (they live in the box's overlay,
agent.local.yaml, which the role never touches: docs/config-ownership.md).
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
import urllib.error
import urllib.request
from contextlib import contextmanager
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

INSTALLER_PASSWORD = "installer-pw-7"


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

    def play(self, cameras: list[dict] | None = None, password_hash: str = "") -> subprocess.CompletedProcess:
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
            "edge_agent_api_password_hash": password_hash,
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
    def overlay_file(self) -> Path:
        return self.root / "etc" / "nightwatch" / "agent.local.yaml"

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


@contextmanager
def _running_agent(deployment: Deployment):
    """`edge-agent run` from the deployed venv on the deployed config; yields its API's base URL once
    /api/health answers, stops it with SIGTERM at the end."""
    proc = subprocess.Popen(
        [str(deployment.venv_bin / "edge-agent"), "run", "--config", str(deployment.config_file)],
        cwd=deployment.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{deployment.port}"
    try:
        deadline = time.monotonic() + 90
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert body is not None, "agent API never answered"
        assert body.get("status") in {"ok", "degraded"}
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _login(base: str) -> str:
    status, body = _call(f"{base}/api/auth/login", "POST", {"password": INSTALLER_PASSWORD})
    assert status == 200, body
    return body["access_token"]


def test_deployed_agent_answers_healthy(deployment: Deployment):
    with _running_agent(deployment):
        pass


MASK = {"points": [[0.0, 0.0], [0.3, 0.0], [0.3, 0.25]]}
ZONE = {"name": "gate", "points": [[0.4, 0.4], [0.9, 0.4], [0.9, 0.95], [0.4, 0.95]]}


def test_redeploy_keeps_masks_and_zones_drawn_on_the_box(deployment: Deployment):
    """The tracker's bug: a rollout erased the masks and zones an installer drew on the web page."""
    from edge_agent.api.auth import hash_password

    password_hash = hash_password(INSTALLER_PASSWORD)
    first = deployment.play(password_hash=password_hash)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    role_bytes = deployment.config_file.read_bytes()  # what the role rendered

    with _running_agent(deployment) as base:  # the installer draws a mask and a zone on the page
        token = _login(base)
        status, body = _call(f"{base}/api/cameras/test-cam", "PATCH",
                             {"motion": {"masks": [MASK], "zones": [ZONE]}}, token)
        assert status == 200, body
        assert body["camera"]["motion"]["zones"][0]["name"] == "gate"

    again = deployment.play(password_hash=password_hash)  # the next rollout, same inventory
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    check = subprocess.run([str(deployment.venv_bin / "edge-agent"), "check-config", str(deployment.config_file)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    with _running_agent(deployment) as base:  # the agent runs with base + overlay
        token = _login(base)
        status, cam = _call(f"{base}/api/cameras/test-cam", token=token)
        assert status == 200, cam
        assert cam["motion"]["masks"] == [MASK]
        assert cam["motion"]["zones"] == [ZONE]
        status, overlay = _call(f"{base}/api/config/overlay", token=token)
        assert status == 200, overlay
        assert overlay["keys"] == 2 and overlay["ignored_cameras"] == []

        # reset: the overlay goes, the agent applies the base live
        status, body = _call(f"{base}/api/config/overlay", "DELETE", token=token)
        assert status == 200, body
        assert sorted(body["changed"]) == ["cameras.test-cam.motion.masks", "cameras.test-cam.motion.zones"]
        status, cam = _call(f"{base}/api/cameras/test-cam", token=token)
        assert cam["motion"]["masks"] == [] and cam["motion"]["zones"] == []
    assert not deployment.overlay_file.exists()
    # the second rollout changed nothing, and the base is the role's, byte for byte, throughout
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-4000:]
    assert deployment.config_file.read_bytes() == role_bytes
    assert "masks" not in deployment.config_file.read_text()


def test_a_base_the_box_overlay_would_make_invalid_fails_the_deploy_before_replacing_it(deployment: Deployment):
    """The role validates the new base together with the box's overlay; the overlay stays as it is."""
    before = deployment.config_file.read_bytes()
    overlay = "cameras:\n  - name: test-cam\n    health:\n      ir_gray_saturation: 6.0\n"
    deployment.overlay_file.write_text(overlay)  # valid over the deployed base (colour default 8)
    try:
        result = deployment.play(cameras=deployment.cameras(health={"ir_color_saturation": 5.0}))
        assert result.returncode != 0
        out = result.stdout + result.stderr
        assert str(deployment.overlay_file) in out
        assert "cameras.test-cam.health (line 3)" in out and "ir_color_saturation must be above" in out
        assert deployment.config_file.read_bytes() == before
        assert deployment.overlay_file.read_text() == overlay
    finally:
        deployment.overlay_file.unlink(missing_ok=True)
