"""Home Assistant MQTT device discovery: one retained device config per camera.

Uses the device-based discovery topic <discovery_prefix>/device/<object_id>/config with every
entity of a camera as a component; republished whenever Home Assistant announces itself online on
<discovery_prefix>/status. The agent's availability topic drives every entity's availability
('stopped' and 'offline' both read as unavailable).
"""

from __future__ import annotations

import json

from edge_agent.publish.spool import Message
from edge_agent.publish.topics import Topics

ORIGIN = {"name": "nightwatch-edge"}


def status_topic(discovery_prefix: str) -> str:
    return f"{discovery_prefix}/status"


def object_id(site: str, camera: str) -> str:
    return f"nightwatch_{site}_{camera}".replace("-", "_")


def device_config(topics: Topics, camera: str, sw_version: str = "") -> dict:
    oid = object_id(topics.site, camera)

    def uid(key: str) -> str:
        return f"{oid}_{key}"

    switch = {"platform": "switch", "payload_on": "ON", "payload_off": "OFF", "optimistic": True}
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
            uid("enabled"): {
                **switch,
                "name": "Enabled",
                "command_topic": topics.command(camera, "enabled"),
                "unique_id": uid("enabled"),
            },
            uid("face_sr"): {
                **switch,
                "name": "Face super-resolution",
                "command_topic": topics.command(camera, "face_sr"),
                "unique_id": uid("face_sr"),
            },
            uid("motion_sensitivity"): {
                "platform": "number",
                "name": "Motion sensitivity",
                "command_topic": topics.command(camera, "motion_sensitivity"),
                "min": 0.0,
                "max": 1.0,
                "step": 0.05,
                "optimistic": True,
                "unique_id": uid("motion_sensitivity"),
            },
            uid("low_light_ratio"): {
                "platform": "number",
                "name": "Low-light brightness ratio",
                "command_topic": topics.command(camera, "low_light_ratio"),
                "min": 1.0,
                "max": 20.0,
                "step": 0.5,
                "optimistic": True,
                "unique_id": uid("low_light_ratio"),
            },
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
