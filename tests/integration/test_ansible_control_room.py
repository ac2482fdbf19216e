"""The control_room role run for real (ansible-playbook, connection local, into a temporary root
prefix; only the systemd and user steps off): the deployed receiver, started from the deployed
virtualenv with the deployed config, stores a signed event a box publishes to a real Mosquitto;
a second run changes nothing; a config the receiver would refuse stops the deploy before the
running one is touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixtures.ports import free_port
from mosquitto import Mosquitto, make_event, require_mosquitto, wait_for

from edge_agent.api.auth import hash_password
from edge_agent.config.schema import MqttConfig
from edge_agent.publish.mqtt import MqttPublisher

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
SITE_KEY = "north-signing-key-0123456789"

pytestmark = pytest.mark.slow

if shutil.which("ansible-playbook", path=str(BIN)) is None:
    pytest.skip("ansible-playbook is not installed (dev extra)", allow_module_level=True)


class ControlRoomDeploy:
    def __init__(self, tmp: Path, broker_port: int):
        self.tmp, self.root, self.broker_port = tmp, tmp / "root", broker_port
        self.console_port = free_port()
        self.pip_args = ""
        self.operator_hash = hash_password("olga-pw-1")  # salted: made once, or every run would change the config
        self.inventory = tmp / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {"children": {"control_room": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))

    def play(self, **overrides) -> subprocess.CompletedProcess:
        extra = {
            "control_room_root": str(self.root),
            "control_room_manage_user": False,
            "control_room_manage_service": False,
            "control_room_python": sys.executable,
            "control_room_mqtt": {"host": "127.0.0.1", "port": self.broker_port},
            "control_room_site_keys": {"north": SITE_KEY},
            "control_room_console_port": self.console_port,
            "control_room_console_secure_cookies": False,
            "control_room_operators": [{"name": "olga", "password_hash": self.operator_hash,
                                        "role": "operator"}],
            "control_room_pip_extra_args": self.pip_args,
            "ansible_become": False,
            **overrides,
        }
        extra_file = self.tmp / "extra.json"
        extra_file.write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=f"{BIN}:{os.environ.get('PATH', '')}")
        return subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory), str(ANSIBLE / "site.yml"), "--limit",
             "localhost", "--tags", "control_room", "-e", f"@{extra_file}"],
            cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=900)

    @property
    def config_file(self) -> Path:
        return self.root / "etc/nightwatch/control-room.yaml"

    @property
    def venv_bin(self) -> Path:
        return self.root / "opt/nightwatch-control-room/venv/bin"


def _recap(output: str) -> dict[str, int]:
    m = re.search(r"^localhost\s*:\s*(.*)$", output, re.MULTILINE)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    require_mosquitto()
    with Mosquitto(tmp_path_factory.mktemp("cr-broker")) as b:
        yield b


@pytest.fixture(scope="module")
def deploy(tmp_path_factory, broker) -> ControlRoomDeploy:
    dep = ControlRoomDeploy(tmp_path_factory.mktemp("cr-ansible"), broker.port)
    # The role installs the wheel into its own virtualenv. Installing every dependency again from the
    # index is what test_ansible_deploy.py already runs for the box (minutes): here the virtualenv
    # borrows this one's packages (a .pth file) and the role installs the wheel itself, --no-deps.
    import site

    subprocess.run([sys.executable, "-m", "venv", str(dep.venv_bin.parent)], check=True)
    lib = next(dep.venv_bin.parent.glob("lib/python*/site-packages"))
    (lib / "_borrowed_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    dep.pip_args = "--no-deps"
    first = dep.play()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    return dep


def test_the_deployed_receiver_stores_a_signed_event(deploy: ControlRoomDeploy, broker, tmp_path):
    cfg = yaml.safe_load(deploy.config_file.read_text())
    assert cfg["sites"]["north"]["hmac_key_file"].endswith("/keys/north.key")
    key_file = Path(cfg["sites"]["north"]["hmac_key_file"])
    assert key_file.read_text().strip() == SITE_KEY and (key_file.stat().st_mode & 0o777) == 0o600
    unit = (deploy.root / "etc/systemd/system/nightwatch-receiver@.service").read_text()
    assert "--instance %i" in unit and "EnvironmentFile=" in unit
    proc = subprocess.Popen([str(deploy.venv_bin / "nightwatch-control-room"), "receive", "--config",
                             str(deploy.config_file), "--instance", "1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pub = None
    try:
        wait_for(lambda: "Received SUBSCRIBE from nightwatch-receiver-1" in broker.log_tail(400), 60,
                 what="the deployed receiver subscribed")
        key = tmp_path / "north.key"
        key.write_text(SITE_KEY + "\n")
        pub = MqttPublisher(MqttConfig(port=broker.port, spool_dir=tmp_path / "spool", hmac_key_file=key,
                                       home_assistant_discovery=False), "north", ["gate"])
        pub.start()
        ev = make_event(camera="gate", n=5, faces=1)
        pub.publish_event(ev)
        import sqlite3

        index = Path(cfg["store_dir"]) / "index.sqlite3"

        def stored():
            if not index.exists():
                return None
            with sqlite3.connect(index) as db:
                return db.execute("SELECT signature FROM events WHERE event_id = ?", (ev.event_id,)).fetchone()

        row = wait_for(stored, 30, what="the event in the deployed store")
        assert row[0] == "valid"
    finally:
        if pub is not None:
            pub.close()
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "receiver stopped" in out, out[-2000:]


def test_a_second_run_changes_nothing(deploy: ControlRoomDeploy):
    again = deploy.play()
    assert again.returncode == 0, again.stdout[-4000:]
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-4000:]


def test_a_config_the_receiver_refuses_stops_the_deploy_first(deploy: ControlRoomDeploy):
    before = deploy.config_file.read_bytes()
    several = deploy.play(control_room_receivers=2)  # several receivers on the embedded store
    assert several.returncode != 0 and "several receivers share one PostgreSQL" in several.stdout
    bad = deploy.play(control_room_operators=[{"name": "olga", "password_hash": "not-a-hash"}])
    assert bad.returncode != 0 and "password_hash" in bad.stdout + bad.stderr
    assert deploy.config_file.read_bytes() == before
