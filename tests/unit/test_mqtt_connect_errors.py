"""What the agent says when a connection ends before the broker answered the login: the socket
error (a reset) or that the other side closed it, never 'refused the login'; and the real reason
when an established connection is reset. The peer is a real TCP server that reads the CONNECT and
then resets or closes, as a TLS listener, a connection limit or a firewall does; the client is the
agent's own paho client."""

from __future__ import annotations

import logging
import socket
import struct
import threading

import pytest

from edge_agent.config.schema import MqttConfig
from edge_agent.publish.mqtt import build_client, connect_and_wait


def one_shot_server(how: str) -> tuple[int, threading.Thread]:
    """Accept one connection, read the CONNECT, then 'reset' (RST) or 'close' (FIN) it."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        with srv:
            conn, _ = srv.accept()
            conn.settimeout(5)
            assert conn.recv(1024)[:1] == b"\x10"  # an MQTT CONNECT packet
            if how == "reset":  # linger 0: close() sends RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return port, t


@pytest.mark.parametrize(
    "how, reason", [("reset", "(Connection reset by peer)"), ("close", "(closed by the other side)")]
)
def test_connection_ended_before_connack_is_not_a_refused_login(tmp_path, caplog, how, reason):
    caplog.set_level(logging.DEBUG)
    port, server = one_shot_server(how)
    cfg = MqttConfig(port=port, username="agent", password="pw-Zq81", spool_dir=tmp_path / "spool")
    message = connect_and_wait(build_client(cfg, "t1"), cfg, timeout=5)
    server.join(5)
    assert message is not None
    assert "refused the login" not in message
    assert f"MQTT broker 127.0.0.1:{port}: the connection ended before the broker answered the login" in message
    assert reason in message and "Unspecified error" not in message
    assert "configure the tls section" in message  # no TLS configured: the likeliest cause is named
    # paho's own line about the socket is DEBUG: the agent reports it once, with host and port
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("edge_agent")]
    assert "pw-Zq81" not in caplog.text


def test_connection_reset_after_login_is_logged_with_its_reason(tmp_path, caplog):
    """A broker that accepts the login (CONNACK 0) and then resets the connection: the publisher says
    'lost (Connection reset by peer)', not paho's 'Unspecified error', and keeps spooling."""
    from mosquitto import wait_for

    from edge_agent.publish.mqtt import MqttPublisher

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    accepted = threading.Event()

    def serve() -> None:
        with srv:
            conn, _ = srv.accept()
            conn.settimeout(5)
            conn.recv(1024)  # CONNECT
            conn.sendall(b"\x20\x02\x00\x00")  # CONNACK: session not present, accepted
            accepted.set()
            conn.recv(1024)  # the first PUBLISH (availability 'online')
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    cfg = MqttConfig(port=port, spool_dir=tmp_path / "spool", reconnect_min_s=5, reconnect_max_s=5)
    pub = MqttPublisher(cfg, "site1", ["cam1"])
    caplog.set_level(logging.INFO, logger="edge_agent.publish.mqtt")
    pub.start()
    try:
        assert accepted.wait(10)
        wait_for(lambda: any("lost (" in r.getMessage() for r in caplog.records), 10, what="the lost connection")
        lost = [r for r in caplog.records if "lost (" in r.getMessage()]
        assert lost[0].levelno == logging.WARNING
        assert lost[0].getMessage() == f"MQTT connection to 127.0.0.1:{port} lost (Connection reset by peer)"
    finally:
        pub.close()
