"""Receivers started at the same moment on a fresh database and bucket (systemd starts every
`nightwatch-receiver@N` together) all open the store: creating the schema and the bucket is not a
race that one of them loses and dies of."""

from __future__ import annotations

import threading

import pytest

from edge_agent.control_room.config import ReceiverConfig
from edge_agent.control_room.store import open_store

N_RECEIVERS = 6


@pytest.mark.parametrize("round_", range(3))
def test_receivers_opening_a_fresh_store_at_once_all_succeed(tmp_path, storage, round_):
    if not storage:
        pytest.skip("one embedded store per host (a folder + SQLite): nothing is shared")
    cfg = ReceiverConfig.model_validate({"store_dir": str(tmp_path / "received"), "storage": storage})
    start = threading.Barrier(N_RECEIVERS)
    stores, errors = [], []

    def open_one() -> None:
        start.wait()
        try:
            stores.append(open_store(cfg))
        except Exception as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(N_RECEIVERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert len(stores) == N_RECEIVERS
        tables = {r["table_name"] for r in stores[0].query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert {"events", "images", "alerts", "availability", "rejected", "holds"} <= tables
        stores[0].blobs.put("probe/one.txt", b"x")  # the bucket exists and takes files
        assert stores[-1].blobs.get("probe/one.txt") == b"x"
    finally:
        for s in stores:
            s.close()
