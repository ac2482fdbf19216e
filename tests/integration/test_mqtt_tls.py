"""TLS + username/password against a real Mosquitto; refused logins and untrusted certificates are
clear logged errors, the agent keeps spooling and does not crash."""

from __future__ import annotations

import logging

import pytest
from mosquitto import Mosquitto, make_ca, make_event, start_receiver, wait_for

from edge_agent.config.schema import MqttConfig
from edge_agent.publish.mqtt import MqttPublisher

AGENT_PW = "agent-pass-Zq81"
CONTROL_PW = "control-pass-Kx42"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Mosquitto(tmp_path_factory.mktemp("tls"), users={"agent": AGENT_PW, "control": CONTROL_PW}, tls=True) as b:
        yield b


def agent_cfg(tmp_path, broker, ca_file=None, **kw) -> MqttConfig:
    return MqttConfig(
        port=broker.port,
        username="agent",
        tls={"ca_file": ca_file or broker.ca_file},
        spool_dir=tmp_path / "spool",
        reconnect_min_s=0.2,
        reconnect_max_s=0.5,
        **kw,
    )


def test_tls_with_password_file_delivers_events(tmp_path, broker, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NW_CONTROL_PW", CONTROL_PW)
    rx = start_receiver(
        tmp_path / "rx",
        broker.port,
        username="control",
        password_env="NW_CONTROL_PW",
        tls={"ca_file": str(broker.ca_file)},
    )
    pw_file = tmp_path / "mqtt-password"
    pw_file.write_text(AGENT_PW + "\n")
    pub = MqttPublisher(agent_cfg(tmp_path, broker, password_file=pw_file), "site1", ["cam1"])
    pub.start()
    try:
        pub.publish_event(make_event(n=5, faces=1))
        wait_for(lambda: len(rx.store.query("SELECT * FROM images WHERE status='ok'")) == 4, 20, what="images")
        # the receiver can hold the images before the publisher has read the last PUBACK
        wait_for(lambda: len(pub.spool) == 0, 10, what="the record acknowledged and removed from the spool")
        assert pub.connected
        assert rx.store.query("SELECT signature FROM events")[0]["signature"] == "unsigned"
    finally:
        pub.close()
        rx.stop()
    assert AGENT_PW not in caplog.text and CONTROL_PW not in caplog.text


@pytest.mark.parametrize(
    "case, expected",
    [
        ("wrong_password", "refused the login for user 'agent'"),
        ("untrusted_cert", "TLS certificate not trusted"),
        # plain MQTT to the TLS port: the broker resets the connection; that is no refused login
        ("no_tls", "the connection ended before the broker answered the login (Connection reset by peer)"),
    ],
)
def test_refused_connection_is_a_clear_error_and_spooling_continues(tmp_path, broker, caplog, case, expected):
    if case == "wrong_password":
        cfg = agent_cfg(tmp_path, broker, password="not-the-password")
    elif case == "no_tls":
        cfg = agent_cfg(tmp_path, broker, password=AGENT_PW).model_copy(update={"tls": None})
    else:
        other_ca, _ = make_ca(tmp_path / "other-ca", "rogue")
        cfg = agent_cfg(tmp_path, broker, ca_file=other_ca, password=AGENT_PW)
    pub = MqttPublisher(cfg, "site1", ["cam1"])
    pub.start()
    try:
        for n in range(3):
            pub.publish_event(make_event(n=n, faces=0))
            pub.publish_alert("cam1", {"kind": "camera_offline", "message": "no frames for 30 s"})
        wait_for(lambda: len(pub.spool) == 6, 15, what="six spooled records")
        # the third attempt has begun, so two have been reported (or repeated quietly)
        wait_for(lambda: pub.counters["connect_failures"] >= 3, 15, what="several reconnect attempts")
        assert not pub.connected
        assert all(t.is_alive() for t in pub._threads)  # no crash
        assert pub.counters["connect_failures"] >= 2
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(expected in m for m in errors), errors
        assert not any("refused the login" in m for m in errors) or case == "wrong_password", errors
        assert len([m for m in errors if expected in m]) == 1  # said once, not once per retry
        assert "spooling" in errors[0]
        assert "not-the-password" not in caplog.text and AGENT_PW not in caplog.text
    finally:
        pub.close()
    assert len(pub.spool) == 6  # still there for the next start
