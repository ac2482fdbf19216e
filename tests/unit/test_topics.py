"""The topic tree and the /set command validation."""

from __future__ import annotations

import pytest

from edge_agent.publish.commands import CommandError, parse_command
from edge_agent.publish.topics import ParsedTopic, TopicError, Topics, all_sites_filter, parse

T = Topics("nightwatch", "site1")


def test_built_topics_parse_back():
    assert parse("nightwatch", T.availability) == ParsedTopic("availability", "site1")
    assert parse("nightwatch", T.alert(None)) == ParsedTopic("alert", "site1")
    assert parse("nightwatch", T.alert("cam1")) == ParsedTopic("alert", "site1", "cam1")
    assert parse("nightwatch", T.motion("cam1")) == ParsedTopic("motion", "site1", "cam1")
    assert parse("nightwatch", T.event("cam1")) == ParsedTopic("event", "site1", "cam1")
    img = T.image("cam1", "20250101T000000000Z-cam1-ab12", 3, "face_0_sr.png")
    assert img == "nightwatch/site1/cam1/image/20250101T000000000Z-cam1-ab12/3/face_0_sr.png"
    assert parse("nightwatch", img) == ParsedTopic(
        "image", "site1", "cam1", event_id="20250101T000000000Z-cam1-ab12", seq=3, name="face_0_sr.png"
    )
    assert parse("nightwatch", T.command("cam1", "enabled")).kind == "command"
    assert parse("nightwatch", T.command_result("cam1", "enabled")).kind == "command_result"
    # a camera named like a site-level leaf is still a camera
    assert parse("nightwatch", T.motion("availability")) == ParsedTopic("motion", "site1", "availability")


def test_multi_level_prefix():
    t = Topics("acme/cctv", "north")
    assert parse("acme/cctv", t.event("gate")) == ParsedTopic("event", "north", "gate")
    assert all_sites_filter("acme/cctv") == "acme/cctv/+/+/#"


@pytest.mark.parametrize(
    "topic",
    [
        "other/site1/cam1/event",
        "nightwatch/site1",
        "nightwatch/site1/cam1/unknown",
        "nightwatch/site1/cam1/image/../0/x.jpg",
        "nightwatch/site1/cam1/image/e1/x/original.jpg",
        "nightwatch/site 1/cam1/event",
        "nightwatch/site1/cam1/image/e1/0/a/b.jpg",
    ],
)
def test_foreign_or_malformed_topics_are_not_parsed(topic):
    assert parse("nightwatch", topic) is None


@pytest.mark.parametrize("bad", ["..", "a/b", "+", "#", "", "x" * 200])
def test_bad_names_cannot_become_topic_levels(bad):
    with pytest.raises(TopicError):
        T.motion(bad)


@pytest.mark.parametrize(
    "key, payload, value",
    [
        ("enabled", b"ON", True),
        ("enabled", b"off", False),
        ("face_sr", b"true", True),
        ("face_sr", b"0", False),
        ("motion_sensitivity", b" 0.75 ", 0.75),
        ("low_light_ratio", b'{"value": 4}', 4.0),
        ("low_light_ratio", b"auto", "auto"),
        ("low_light_ratio", b"7", 7.0),
    ],
)
def test_commands_accept_plain_and_json_values(key, payload, value):
    assert parse_command(key, payload) == value


@pytest.mark.parametrize(
    "key, payload, message",
    [
        ("motion_sensitivity", b"1.01", "less than or equal to 1"),
        ("low_light_ratio", b"0.5", "greater than or equal to 1"),
        ("low_light_ratio", b"inf", "less than or equal to 50"),
        ("low_light_ratio", b"nan", "not a number"),
        ("low_light_ratio", b"bright", "from 1 to 50 or auto"),
        ("enabled", b"perhaps", "valid boolean"),
        ("brightness", b"1", "unknown setting"),
        ("enabled", b"\xff\xfe", "not UTF-8"),
        ("enabled", b"1" * 100, "too long"),
    ],
)
def test_commands_refuse_bad_values_with_a_reason(key, payload, message):
    with pytest.raises(CommandError, match=message):
        parse_command(key, payload)


def test_publisher_refuses_unknown_cameras_without_dying(tmp_path, caplog):
    from edge_agent.config.schema import MqttConfig
    from edge_agent.publish.mqtt import MqttPublisher

    pub = MqttPublisher(MqttConfig(port=1, spool_dir=tmp_path / "spool"), "site1", ["cam1"])
    pub.publish_motion("../etc", True)
    pub.publish_stats("nope", {"frames": 1})
    assert "unknown camera '../etc'" in caplog.text and "unknown camera 'nope'" in caplog.text
    with pytest.raises(TopicError):
        MqttPublisher(MqttConfig(port=1, spool_dir=tmp_path / "spool"), "site1", ["bad/cam"])
