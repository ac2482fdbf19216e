"""Home Assistant MQTT device discovery: one retained device config per camera.

Uses the device-based discovery topic <discovery_prefix>/device/<object_id>/config with every
entity of a camera as a component; republished whenever Home Assistant announces itself online on
<discovery_prefix>/status. The agent's availability topic drives every entity's availability
('stopped' and 'offline' both read as unavailable).
"""

from __future__ import annotations

import json

from edge_agent.config import commands
from edge_agent.publish.spool import Message
from edge_agent.publish.topics import Topics

ORIGIN = {"name": "nightwatch-edge"}


def status_topic(discovery_prefix: str) -> str:
    return f"{discovery_prefix}/status"


def object_id(site: str, camera: str) -> str:
    return f"nightwatch_{site}_{camera}".replace("-", "_")


def _command_entity(topics: Topics, camera: str, cmd: commands.Command, unique_id: str) -> dict:
    """A switch, number or text entity for one command setting, from config/commands.py: its
    bounds are the schema's, its state is the retained state topic the agent publishes on connect
    and after every change (so Home Assistant shows what the box really runs, never a guess)."""
    shape = commands.shape(cmd.key)
    entity = {
        "name": cmd.label,
        "command_topic": topics.command(camera, cmd.key),
        "state_topic": topics.setting_state(camera, cmd.key),
        "unique_id": unique_id,
    }
    if shape.kind == "switch":
        return {"platform": "switch", "payload_on": "ON", "payload_off": "OFF",
                "state_on": "ON", "state_off": "OFF", **entity}
    if shape.words:  # a number or a word (low_light_ratio: 1..50 or auto): a text entity
        words = "|".join(shape.words)
        return {"platform": "text", "pattern": rf"^({words}|[0-9]+(\.[0-9]+)?)$", "max": 16, **entity}
    return {"platform": "number", "min": shape.min, "max": shape.max, "step": cmd.step or 1, **entity}


def device_config(topics: Topics, camera: str, sw_version: str = "") -> dict:
    oid = object_id(topics.site, camera)

    def uid(key: str) -> str:
        return f"{oid}_{key}"

    return {
        "device": {
            "identifiers": [oid],
            "name": f"{topics.site} {camera}",
            "manufacturer": "Nightwatch",
            "model": "Nightwatch Edge camera",
            **({"sw_version": sw_version} if sw_version else {}),
        },
        "origin": {**ORIGIN, **({"sw_version": sw_version} if sw_version else {})},
        "availability": [
            {
                "topic": topics.availability,
                "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
            }
        ],
        "qos": 1,
        "components": {
            uid("motion"): {
                "platform": "binary_sensor",
                "name": "Motion",
                "device_class": "motion",
                "state_topic": topics.motion(camera),
                "payload_on": "ON",
                "payload_off": "OFF",
                "unique_id": uid("motion"),
            },
            uid("events"): {
                "platform": "sensor",
                "name": "Events published",
                "state_topic": topics.stats(camera),
                "value_template": "{{ value_json.events_published }}",
                "state_class": "total_increasing",
                "unique_id": uid("events"),
            },
            **{uid(c.key): _command_entity(topics, camera, c, uid(c.key)) for c in commands.COMMANDS},
        },
    }


def discovery_messages(
    topics: Topics, cameras: list[str], discovery_prefix: str, sw_version: str = ""
) -> list[Message]:
    return [
        Message(
            f"{discovery_prefix}/device/{object_id(topics.site, cam)}/config",
            json.dumps(device_config(topics, cam, sw_version), sort_keys=True).encode(),
            qos=1,
            retain=True,
        )
        for cam in cameras
    ]
