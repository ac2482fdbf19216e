"""The broker's access list from the mosquitto role (ansible/roles/mosquitto/templates/acl.j2),
rendered with the role's defaults and loaded by a real Mosquitto: a box publishes and reads only
under its own site; the control room reads every site, through its shared subscription too."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import jinja2
import paho.mqtt.client as paho
import pytest
import yaml
from mosquitto import Mosquitto, require_mosquitto
from paho.mqtt.enums import CallbackAPIVersion

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "mosquitto"
USERS = [{"username": "nvr-north-01", "password": "pw-north", "site": "north"},
         {"username": "south", "password": "pw-south"},  # site defaults to the username
         {"username": "control-room", "password": "pw-cr", "role": "control_room"}]


def render_acl() -> str:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=False)
    template = env.from_string((ROLE / "templates" / "acl.j2").read_text())
    return template.render(ansible_managed="test", mosquitto_password_users=USERS,
                           mosquitto_topic_prefix=defaults["mosquitto_topic_prefix"],
                           mosquitto_box_extra_topics=defaults["mosquitto_box_extra_topics"])


class Client:
    def __init__(self, port: int, user: str, password: str, v5: bool = False):
        self.got: list[str] = []
        self.lock = threading.Lock()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}-{time.monotonic_ns()}",
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
        self.c.username_pw_set(user, password)
        self.c.on_message = lambda _c, _u, m: self._add(m.topic)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _add(self, topic: str) -> None:
        with self.lock:
            self.got.append(topic)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *_a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str) -> None:
        self.c.publish(topic, b"{}", qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.mark.slow
def test_a_box_uses_only_its_own_site_and_the_control_room_reads_all(tmp_path):
    require_mosquitto()
    acl = render_acl()
    assert "user nvr-north-01\ntopic readwrite nightwatch/north/#" in acl
    with Mosquitto(tmp_path, users={u["username"]: u["password"] for u in USERS}, acl=acl) as broker:
        room = Client(broker.port, "control-room", "pw-cr", v5=True)
        shared = Client(broker.port, "control-room", "pw-cr", v5=True)
        north = Client(broker.port, "nvr-north-01", "pw-north")
        south = Client(broker.port, "south", "pw-south")
        try:
            room.subscribe("nightwatch/#")
            shared.subscribe("$share/receivers/nightwatch/#")
            north.subscribe("nightwatch/#")  # allowed to ask; gets only what its site may read
            north.publish("nightwatch/north/gate/event")
            north.publish("nightwatch/south/door/event")  # posing as another site: dropped
            north.publish("homeassistant/device/north_gate/config")
            south.publish("nightwatch/south/door/event")
            time.sleep(1.5)
            assert sorted(room.got) == ["nightwatch/north/gate/event", "nightwatch/south/door/event"]
            assert sorted(shared.got) == ["nightwatch/north/gate/event", "nightwatch/south/door/event"]
            assert north.got == ["nightwatch/north/gate/event"]  # south's camera is not north's to read
        finally:
            for c in (room, shared, north, south):
                c.close()
