"""Control-room storage: a dated folder tree plus a SQLite index.

    <root>/index.sqlite3
    <root>/<YYYY-MM-DD>/<site>/<camera>/<event_id>/<seq>-<phase>.json    event documents as received
    <root>/<YYYY-MM-DD>/<site>/<camera>/<event_id>/<seq>-<image name>    image bytes as received

The date is the UTC day in the event id (ids start with YYYYMMDDT...), so every message of one
event lands in one folder whatever order it arrives in. Uniqueness in the index is what keeps a
replayed message from being stored twice: events on (site, event_id, phase, seq), images on
(site, event_id, seq, name), alerts on (site, alert_id). Every path level was validated as a
plain name (topics.check_segment) before it gets here.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from edge_agent.media import sha256_hex

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL,
    phase TEXT NOT NULL, seq INTEGER NOT NULL,
    ts REAL, started_at REAL, received_at REAL NOT NULL,
    path TEXT NOT NULL, signature TEXT NOT NULL,
    flag TEXT,
    UNIQUE (site, event_id, phase, seq)
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, camera TEXT NOT NULL, event_id TEXT NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, role TEXT, enhanced INTEGER,
    expected_sha256 TEXT, sha256 TEXT, bytes INTEGER,
    path TEXT, received_at REAL,
    status TEXT NOT NULL,  -- pending (announced, not here), unverified (here, no event yet), ok, mismatch
    flag TEXT,
    UNIQUE (site, event_id, seq, name)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, camera TEXT, alert_id TEXT NOT NULL, ts REAL, received_at REAL NOT NULL,
    payload TEXT NOT NULL, signature TEXT NOT NULL, flag TEXT,
    UNIQUE (site, alert_id)
);
CREATE TABLE IF NOT EXISTS availability (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL, received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, reason TEXT NOT NULL, received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_event ON images (site, event_id);
"""

MAX_KEPT_REJECTED = 1 << 20  # bytes of a refused message kept for inspection
_DAY_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T")


def _append_flag(old: str | None, new: str) -> str:
    return new if not old else f"{old}; {new}"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ReceiverStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "index.sqlite3", check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.RLock()  # one connection, used from the console's request threads too
        self.db.executescript(SCHEMA)
        self.db.commit()
        self.duplicates = 0

    def close(self) -> None:
        self.db.close()

    def event_dir(self, site: str, camera: str, event_id: str) -> Path:
        m = _DAY_RE.match(event_id)
        day = f"{m[1]}-{m[2]}-{m[3]}" if m else "undated"
        return self.root / day / site / camera / event_id

    # ------------------------------------------------------------------ events
    def add_event(
        self, site: str, camera: str, doc: dict[str, Any], raw: bytes, signature: str, flags: list[str]
    ) -> tuple[bool, list[str]]:
        """Store an event document. Returns (stored, flags); stored is False for a duplicate.

        Registers every image the document names (with its expected sha256) and checks any that
        already arrived; mismatches are added to the returned flags.
        """
        event_id, phase, seq = doc["event_id"], doc["phase"], int(doc["seq"])
        row = self.db.execute(
            "SELECT path FROM events WHERE site=? AND event_id=? AND phase=? AND seq=?",
            (site, event_id, phase, seq),
        ).fetchone()
        if row is not None:
            self.duplicates += 1
            old = (self.root / row[0]).read_bytes() if (self.root / row[0]).exists() else b""
            if old != raw:
                return False, [f"a different copy of event {event_id} {phase} #{seq} arrived; kept the first"]
            return False, []
        flags = list(flags)
        path = self.event_dir(site, camera, event_id) / f"{seq:03d}-{phase}.json"
        for name, meta in (doc.get("images") or {}).items():
            expected = meta.get("sha256") if isinstance(meta, dict) else None
            have = self.db.execute(
                "SELECT sha256, flag FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
                (site, event_id, seq, name),
            ).fetchone()
            role = meta.get("role") if isinstance(meta, dict) else None
            enhanced = int(bool(meta.get("enhanced"))) if isinstance(meta, dict) else None
            if have is None:
                self.db.execute(
                    "INSERT INTO images (site, camera, event_id, seq, name, role, enhanced, expected_sha256, status)"
                    " VALUES (?,?,?,?,?,?,?,?, 'pending')",
                    (site, camera, event_id, seq, name, role, enhanced, expected),
                )
                continue
            ok = have[0] == expected
            flag = None if ok else f"sha256 mismatch: event says {expected}, image is {have[0]}"
            if flag:
                flags.append(f"image {name}: {flag}")
            self.db.execute(
                "UPDATE images SET role=?, enhanced=?, expected_sha256=?, status=?, flag=? "
                "WHERE site=? AND event_id=? AND seq=? AND name=?",
                (role, enhanced, expected, "ok" if ok else "mismatch", flag, site, event_id, seq, name),
            )
        _write(path, raw)
        self.db.execute(
            "INSERT INTO events (site, camera, event_id, phase, seq, ts, started_at, received_at, path,"
            " signature, flag) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                site,
                camera,
                event_id,
                phase,
                seq,
                doc.get("ts"),
                doc.get("started_at"),
                time.time(),
                str(path.relative_to(self.root)),
                signature,
                "; ".join(flags) or None,
            ),
        )
        self.db.commit()
        return True, flags

    # ------------------------------------------------------------------ images
    def add_image(self, site: str, camera: str, event_id: str, seq: int, name: str, data: bytes) -> tuple[str, str | None]:
        """Store image bytes. Returns (status, flag): status is ok, mismatch, unverified or duplicate."""
        digest = sha256_hex(data)
        row = self.db.execute(
            "SELECT expected_sha256, sha256, status, flag FROM images WHERE site=? AND event_id=? AND seq=? AND name=?",
            (site, event_id, seq, name),
        ).fetchone()
        if row is not None and row[1] is not None:  # already have the bytes: a replay
            self.duplicates += 1
            if row[1] == digest:
                return "duplicate", None
            flag = f"a different copy (sha256 {digest}) arrived after {row[1]}; kept the first"
            self.db.execute(
                "UPDATE images SET flag=? WHERE site=? AND event_id=? AND seq=? AND name=?",
                (_append_flag(row[3], flag), site, event_id, seq, name),
            )
            self.db.commit()
            return "duplicate", flag
        path = self.event_dir(site, camera, event_id) / f"{seq:03d}-{name}"
        _write(path, data)
        rel = str(path.relative_to(self.root))
        if row is None:
            status, flag = "unverified", None
            self.db.execute(
                "INSERT INTO images (site, camera, event_id, seq, name, sha256, bytes, path, received_at, status)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (site, camera, event_id, seq, name, digest, len(data), rel, time.time(), status),
            )
        else:
            expected = row[0]
            status = "ok" if expected == digest else "mismatch"
            flag = None if status == "ok" else f"sha256 mismatch: event says {expected}, image is {digest}"
            self.db.execute(
                "UPDATE images SET sha256=?, bytes=?, path=?, received_at=?, status=?, flag=? "
                "WHERE site=? AND event_id=? AND seq=? AND name=?",
                (digest, len(data), rel, time.time(), status, flag, site, event_id, seq, name),
            )
        self.db.commit()
        return status, flag

    # ------------------------------------------------------------------ alerts, availability, rejects
    def add_alert(
        self, site: str, camera: str | None, doc: dict[str, Any], raw: bytes, signature: str, flag: str | None
    ) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO alerts (site, camera, alert_id, ts, received_at, payload, signature, flag)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (site, camera, str(doc["alert_id"]), doc.get("ts"), time.time(), raw.decode("utf-8"), signature, flag),
        )
        self.db.commit()
        if cur.rowcount == 0:
            self.duplicates += 1
        return cur.rowcount == 1

    def add_availability(self, site: str, state: str) -> None:
        self.db.execute("INSERT INTO availability (site, state, received_at) VALUES (?,?,?)", (site, state, time.time()))
        self.db.commit()

    def add_rejected(self, topic: str, reason: str, payload: bytes = b"") -> None:
        """Keep a refused message for inspection: its topic, the reason, and its first MiB under rejected/."""
        now = time.time()
        cur = self.db.execute("INSERT INTO rejected (topic, reason, received_at) VALUES (?,?,?)", (topic, reason, now))
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-{cur.lastrowid:06d}.bin"
        _write(self.root / "rejected" / name, payload[:MAX_KEPT_REJECTED])
        self.db.commit()

    # ------------------------------------------------------------------ reading (tests, tools)
    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def execute(self, sql: str, params: tuple = ()) -> int:
        """One write, committed; returns the rows it changed."""
        with self._lock:
            cur = self.db.execute(sql, params)
            self.db.commit()
            return cur.rowcount

    def executescript(self, sql: str) -> None:
        with self._lock:
            self.db.executescript(sql)
            self.db.commit()

    def event_doc(self, row: dict[str, Any]) -> dict[str, Any]:
        return json.loads((self.root / row["path"]).read_text(encoding="utf-8"))
