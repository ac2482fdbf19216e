"""Control-room storage: a dated tree of files plus an index (backends.py: the store folder and
SQLite by default, or an S3-compatible object store and PostgreSQL).

    index.sqlite3 (or the PostgreSQL database)
    <YYYY-MM-DD>/<site>/<camera>/<event_id>/<seq>-<phase>.json    event documents as received
    <YYYY-MM-DD>/<site>/<camera>/<event_id>/<seq>-<image name>    image bytes as received
    rejected/<time>-<n>.bin                                        refused messages (first MiB)

The date is the UTC day in the event id (ids start with YYYYMMDDT...), so every message of one
event lands under one key prefix whatever order it arrives in. Uniqueness in the index is what
keeps a replayed message from being stored twice: events on (site, event_id, phase, seq), images on
(site, event_id, seq, name), alerts on (site, alert_id). Every key level was validated as a
plain name (topics.check_segment) before it gets here.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from edge_agent.control_room.backends import Blobs, FolderBlobs, Index, SqliteIndex
from edge_agent.media import sha256_hex

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id {ID},
    site TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL,
    phase TEXT NOT NULL, seq INTEGER NOT NULL,
    ts DOUBLE PRECISION, started_at DOUBLE PRECISION, received_at DOUBLE PRECISION NOT NULL,
    path TEXT NOT NULL, signature TEXT NOT NULL,
    flag TEXT,
    UNIQUE (site, event_id, phase, seq)
);
CREATE TABLE IF NOT EXISTS images (
    id {ID},
    site TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, role TEXT, enhanced INTEGER,
    expected_sha256 TEXT, sha256 TEXT, bytes INTEGER,
    path TEXT, received_at DOUBLE PRECISION,
    status TEXT NOT NULL,
    flag TEXT,
    UNIQUE (site, event_id, seq, name)
);
CREATE TABLE IF NOT EXISTS alerts (
    id {ID},
    site TEXT NOT NULL, camera TEXT, alert_id TEXT NOT NULL, ts DOUBLE PRECISION, received_at DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL, signature TEXT NOT NULL, flag TEXT,
    UNIQUE (site, alert_id)
);
CREATE TABLE IF NOT EXISTS availability (
    id {ID}, site TEXT NOT NULL, state TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id {ID}, topic TEXT NOT NULL, reason TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL, path TEXT
);
CREATE TABLE IF NOT EXISTS holds (
    site TEXT NOT NULL, event_id TEXT NOT NULL, operator TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (site, event_id)
);
CREATE INDEX IF NOT EXISTS images_by_event ON images (site, event_id);
CREATE INDEX IF NOT EXISTS events_by_event ON events (site, event_id)
"""
# image status: pending (announced, not here), unverified (here, no event yet), ok, mismatch

MAX_KEPT_REJECTED = 1 << 20  # bytes of a refused message kept for inspection
_DAY_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T")


def _append_flag(old: str | None, new: str) -> str:
    return new if not old else f"{old}; {new}"


class ReceiverStore:
    def __init__(self, root: str | Path, index: Index | None = None, blobs: Blobs | None = None):
        """root: the store folder (SQLite index and files unless index / blobs say otherwise)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.index = index if index is not None else SqliteIndex(self.root / "index.sqlite3")
        self.blobs = blobs if blobs is not None else FolderBlobs(self.root)
        self.index.script(SCHEMA.replace("{ID}", type(self.index).ID))
        self.duplicates = 0

    def close(self) -> None:
        self.index.close()

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        return self.index.query(sql, params)

    def execute(self, sql: str, params: tuple = ()) -> int:
        return self.index.execute(sql, params)

    def event_dir(self, site: str, camera: str, event_id: str) -> str:
        """The key prefix of one event's files."""
        m = _DAY_RE.match(event_id)
        day = f"{m[1]}-{m[2]}-{m[3]}" if m else "undated"
        return f"{day}/{site}/{camera}/{event_id}"

    def read(self, key: str) -> bytes:
        return self.blobs.get(key)

    def event_doc(self, row: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.blobs.get(row["path"]).decode("utf-8"))

    # ------------------------------------------------------------------ events
    def add_event(
        self, site: str, camera: str, doc: dict[str, Any], raw: bytes, signature: str, flags: list[str]
    ) -> tuple[bool, list[str]]:
        """Store an event document. Returns (stored, flags); stored is False for a duplicate.

        Registers every image the document names (with its expected sha256) and checks any that
        already arrived; mismatches are added to the returned flags.
        """
        event_id, phase, seq = doc["event_id"], doc["phase"], int(doc["seq"])
        row = self.query("SELECT path FROM events WHERE site=? AND event_id=? AND phase=? AND seq=?",
                         (site, event_id, phase, seq))
        if row:
            self.duplicates += 1
            try:
                old = self.blobs.get(row[0]["path"])
            except OSError:
                old = b""
            if old != raw:
                return False, [f"a different copy of event {event_id} {phase} #{seq} arrived; kept the first"]
            return False, []
        flags = list(flags)
        key = f"{self.event_dir(site, camera, event_id)}/{seq:03d}-{phase}.json"
        for name, meta in (doc.get("images") or {}).items():
            expected = meta.get("sha256") if isinstance(meta, dict) else None
            have = self.query("SELECT sha256, flag FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
                              (site, event_id, seq, name))
            role = meta.get("role") if isinstance(meta, dict) else None
            enhanced = int(bool(meta.get("enhanced"))) if isinstance(meta, dict) else None
            if not have:
                n = self.execute(
                    "INSERT INTO images (site, camera, event_id, seq, name, role, enhanced, expected_sha256, status)"
                    " VALUES (?,?,?,?,?,?,?,?, 'pending') ON CONFLICT DO NOTHING",
                    (site, camera, event_id, seq, name, role, enhanced, expected),
                )
                if n == 1:
                    continue
                # the image got in first meanwhile (another receiver stored it): verify it now
                have = self.query("SELECT sha256, flag FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
                                  (site, event_id, seq, name))
            if have[0]["sha256"] is None:  # announced by another copy of this event, not here yet
                continue
            ok = have[0]["sha256"] == expected
            flag = None if ok else f"sha256 mismatch: event says {expected}, image is {have[0]['sha256']}"
            if flag:
                flags.append(f"image {name}: {flag}")
            self.execute(
                "UPDATE images SET role=?, enhanced=?, expected_sha256=?, status=?, flag=? "
                "WHERE site=? AND event_id=? AND seq=? AND name=?",
                (role, enhanced, expected, "ok" if ok else "mismatch", flag, site, event_id, seq, name),
            )
        self.blobs.put(key, raw)
        n = self.execute(
            "INSERT INTO events (site, camera, event_id, phase, seq, ts, started_at, received_at, path,"
            " signature, flag) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (site, camera, event_id, phase, seq, doc.get("ts"), doc.get("started_at"), time.time(), key,
             signature, "; ".join(flags) or None),
        )
        if n == 0:  # another receiver stored the same message meanwhile
            self.duplicates += 1
            return False, []
        return True, flags

    # ------------------------------------------------------------------ images
    def add_image(self, site: str, camera: str, event_id: str, seq: int, name: str, data: bytes) -> tuple[str, str | None]:
        """Store image bytes. Returns (status, flag): status is ok, mismatch, unverified or duplicate."""
        digest = sha256_hex(data)
        rows = self.query(
            "SELECT expected_sha256, sha256, status, flag FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
            (site, event_id, seq, name))
        row = rows[0] if rows else None
        if row is not None and row["sha256"] is not None:  # already have the bytes: a replay
            self.duplicates += 1
            if row["sha256"] == digest:
                return "duplicate", None
            flag = f"a different copy (sha256 {digest}) arrived after {row['sha256']}; kept the first"
            self.execute("UPDATE images SET flag=? WHERE site=? AND event_id=? AND seq=? AND name=?",
                         (_append_flag(row["flag"], flag), site, event_id, seq, name))
            return "duplicate", flag
        key = f"{self.event_dir(site, camera, event_id)}/{seq:03d}-{name}"
        self.blobs.put(key, data)
        if row is None:
            status, flag = "unverified", None
            n = self.execute(
                "INSERT INTO images (site, camera, event_id, seq, name, sha256, bytes, path, received_at, status)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (site, camera, event_id, seq, name, digest, len(data), key, time.time(), status),
            )
            if n == 1:
                return status, flag
            # the event's announcement got in first (another receiver): verify against it
            row = self.query("SELECT expected_sha256 FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
                             (site, event_id, seq, name))[0]
        expected = row["expected_sha256"]
        status = "ok" if expected == digest else "mismatch"
        flag = None if status == "ok" else f"sha256 mismatch: event says {expected}, image is {digest}"
        self.execute(
            "UPDATE images SET sha256=?, bytes=?, path=?, received_at=?, status=?, flag=? "
            "WHERE site=? AND event_id=? AND seq=? AND name=?",
            (digest, len(data), key, time.time(), status, flag, site, event_id, seq, name),
        )
        return status, flag

    # ------------------------------------------------------------------ alerts, availability, rejects
    def add_alert(
        self, site: str, camera: str | None, doc: dict[str, Any], raw: bytes, signature: str, flag: str | None
    ) -> bool:
        n = self.execute(
            "INSERT INTO alerts (site, camera, alert_id, ts, received_at, payload, signature, flag)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (site, camera, str(doc["alert_id"]), doc.get("ts"), time.time(), raw.decode("utf-8"), signature, flag),
        )
        if n == 0:
            self.duplicates += 1
        return n == 1

    def add_availability(self, site: str, state: str) -> None:
        self.execute("INSERT INTO availability (site, state, received_at) VALUES (?,?,?)", (site, state, time.time()))

    def add_rejected(self, topic: str, reason: str, payload: bytes = b"") -> None:
        """Keep a refused message for inspection: its topic, the reason, and its first MiB under rejected/."""
        now = time.time()
        row = self.query("INSERT INTO rejected (topic, reason, received_at) VALUES (?,?,?) RETURNING id",
                         (topic, reason, now))[0]
        key = f"rejected/{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-{row['id']:06d}.bin"
        self.blobs.put(key, payload[:MAX_KEPT_REJECTED])
        self.execute("UPDATE rejected SET path = ? WHERE id = ?", (key, row["id"]))


class StoreError(Exception):
    """The configured storage cannot be opened (names what and why; never the password)."""


def open_store(cfg) -> ReceiverStore:
    """The store a ReceiverConfig describes (a new connection each call)."""
    import os

    from edge_agent.control_room.backends import PostgresIndex, S3Blobs

    st = cfg.storage
    index = blobs = None
    if st.index == "postgresql":
        dsn = os.environ.get(st.postgres_dsn_env or "")
        if not dsn:
            raise StoreError(f"storage.postgres_dsn_env: the env var {st.postgres_dsn_env} is not set")
        try:
            index = PostgresIndex(dsn)
        except Exception as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if st.files == "s3":
        s3 = st.s3
        try:
            blobs = S3Blobs(s3.endpoint, s3.bucket, os.environ.get(s3.access_key_env or ""),
                            os.environ.get(s3.secret_key_env or ""), s3.region)
        except Exception as exc:
            raise StoreError(f"cannot open the S3 bucket {s3.bucket} at {s3.endpoint or 'AWS'} "
                             f"({type(exc).__name__}: {exc})") from None
    return ReceiverStore(cfg.store_dir, index=index, blobs=blobs)
