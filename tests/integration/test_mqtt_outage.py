"""The broker goes away for 60 s while events keep coming: nothing is lost, nothing is doubled.

The outage is proven, not assumed: the broker's own process holds the listening port before it,
and nothing listens on the port during it (at its start and at its end)."""

from __future__ import annotations

import threading
import time

import pytest
from mosquitto import (
    Mosquitto,
    assert_listens_only,
    assert_nothing_listens,
    make_event,
    start_receiver,
    wait_for,
)

from edge_agent.config.schema import MqttConfig
from edge_agent.publish.mqtt import MqttPublisher


@pytest.mark.slow
def test_broker_down_60s_every_event_arrives_in_order_without_duplicates(tmp_path, monkeypatch):
    monkeypatch.setenv("NW_TEST_KEY", "outage-test-key-0123456789")
    broker = Mosquitto(tmp_path).start()
    rx = start_receiver(tmp_path / "received", broker.port, keys={"site1": b"outage-test-key-0123456789"})
    cfg = MqttConfig(
        port=broker.port, spool_dir=tmp_path / "spool", hmac_key_env="NW_TEST_KEY",
        reconnect_min_s=0.5, reconnect_max_s=2, keepalive_s=5,
    )  # fmt: skip
    pub = MqttPublisher(cfg, "site1", ["cam1", "cam2"])
    pub.start()
    wait_for(lambda: pub.connected, 10, what="publisher connected")

    produced: list[tuple[str, str]] = []
    stop = threading.Event()

    def motion_keeps_firing() -> None:
        n = 0
        while not stop.is_set():
            cam = ("cam1", "cam2")[n % 2]
            ev = make_event(camera=cam, n=n, faces=0, enhanced=False, size=(24, 32))
            pub.publish_event(ev)
            produced.append((ev.event_id, "new"))
            end = make_event(camera=cam, phase="end", event_id=ev.event_id, n=n, faces=0, enhanced=False)
            end.original = None
            pub.publish_event(end)
            produced.append((ev.event_id, "end"))
            pub.publish_motion(cam, n % 3 != 0)
            n += 1
            stop.wait(0.5)

    producer = threading.Thread(target=motion_keeps_firing)
    producer.start()
    try:
        time.sleep(3)
        assert_listens_only(broker)  # the publisher and the receiver talk to this process
        broker.stop()
        outage_start = len(produced)
        assert_nothing_listens(broker.port)
        wait_for(lambda: not pub.connected, 15, what="publisher noticing the outage")
        time.sleep(60)
        outage_events = len(produced) - outage_start
        assert len(pub.spool) > 0
        assert_nothing_listens(broker.port)  # still down at the end of the outage
        broker.start()  # same port; the receiver's persistent session comes back from disk
        assert_listens_only(broker)
        time.sleep(3)  # events keep coming after the outage too
    finally:
        stop.set()
        producer.join()
    n_produced = len(produced)
    store = rx.store
    try:
        wait_for(lambda: len(store.query("SELECT id FROM events")) >= n_produced, 60, what="every event")
        wait_for(lambda: not store.query("SELECT id FROM images WHERE status != 'ok'"), 20, what="images")
        time.sleep(1)  # late duplicates, if any, would land now
        rows = store.query("SELECT event_id, phase, signature, flag FROM events ORDER BY id")
        assert outage_events >= 100  # 60 s at 2 messages per 0.5 s
        assert [(r["event_id"], r["phase"]) for r in rows] == produced  # all of them, in order, once
        assert all(r["signature"] == "valid" and r["flag"] is None for r in rows)
        images = store.query("SELECT event_id, name, status FROM images ORDER BY id")
        assert [i["event_id"] for i in images] == [e for e, p in produced if p == "new"]
        assert {i["status"] for i in images} == {"ok"}
        assert pub.counters["connects"] >= 2
        # the receiver may hold the last record before the publisher has read its PUBACK
        wait_for(lambda: len(pub.spool) == 0, 10, what="the spool emptied by the acknowledgements")
    finally:
        pub.close()
        rx.stop()
        broker.stop()
