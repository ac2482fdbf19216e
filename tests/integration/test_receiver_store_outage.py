"""A database outage loses nothing: while PostgreSQL is down the receiver cannot commit, so it does not
acknowledge; the broker keeps the message and hands it over again once the database is back."""

from __future__ import annotations

import logging

import pytest
from mosquitto import Mosquitto, make_event, require_mosquitto, wait_for

from edge_agent.config.schema import MqttConfig
from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.ingest import Receiver
from edge_agent.control_room.store import open_store
from edge_agent.publish.mqtt import MqttPublisher


@pytest.mark.slow
def test_a_message_the_store_could_not_commit_comes_again_after_the_outage(tmp_path, monkeypatch, caplog):
    from fixtures.storage_servers import Postgres, postgres_available

    if not postgres_available():
        pytest.skip("needs PostgreSQL (Debian postgresql)")
    require_mosquitto()
    caplog.set_level(logging.INFO, logger="edge_agent.control_room")
    with Postgres(tmp_path / "pg") as pg, Mosquitto(tmp_path) as broker:
        monkeypatch.setenv("NW_OUTAGE_DSN", pg.dsn)
        cfg = ReceiverConfig.model_validate({
            "mqtt": {"port": broker.port, "client_id": "rx-outage"},
            "store_dir": str(tmp_path / "received"),
            "storage": {"index": "postgresql", "postgres_dsn_env": "NW_OUTAGE_DSN"},
        })
        store = open_store(cfg)
        receiver = Receiver(cfg, store, {}).start()
        pub = MqttPublisher(MqttConfig(port=broker.port, spool_dir=tmp_path / "spool",
                                       home_assistant_discovery=False), "site1", ["cam1"])
        try:
            assert receiver.connected.wait(15)
            pub.start()
            first = make_event(n=1, faces=0)
            pub.publish_event(first)
            wait_for(lambda: store.query("SELECT count(*) AS n FROM events")[0]["n"] == 1, 20, what="first event")

            pg.stop()
            second = make_event(n=2, faces=0)
            pub.publish_event(second)
            wait_for(lambda: "stays unacknowledged" in caplog.text, 20, what="the failed commit logged")

            pg.restart()
            ids = lambda: {r["event_id"] for r in store.query("SELECT event_id FROM events")}  # noqa: E731
            wait_for(lambda: second.event_id in ids(), 60, interval=0.3, what="the second event, delivered again")
            assert ids() == {first.event_id, second.event_id}
            rows = store.query("SELECT status FROM images WHERE event_id = ?", (second.event_id,))
            wait_for(lambda: len(store.query("SELECT status FROM images WHERE event_id = ? AND status = 'ok'",
                                             (second.event_id,))) == 2, 30, what="its images verified")
            assert len(rows) == 2
        finally:
            pub.close()
            receiver.stop()
            store.close()
