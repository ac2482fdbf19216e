"""Bounded on-disk queue of MQTT messages, so nothing is lost while the broker is unreachable.

One file per record (a record is the messages that belong together, e.g. an event JSON and its
images), named by a sequence number that only grows, so replay order is append order even
after a restart. Files are written to a temporary name and renamed; each ends with a sha256 of
its content, so a torn or damaged file is detected, moved to bad/ and counted, never half-sent.
When the spool would exceed its size limit the oldest records are dropped and counted.

File layout: b"NWSP1\\n", u32 message count, then per message: u8 flags (bits 0-1 qos, bit 2
retain), u16 topic length, topic (UTF-8), u32 payload length, payload; then sha256 of all that.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from edge_agent.records import SpoolStatus

log = logging.getLogger(__name__)

MAGIC = b"NWSP1\n"
SUFFIX = ".rec"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Record:
    seq: int
    messages: list[Message]
    size: int


class SpoolError(ValueError):
    pass


def encode_record(messages: list[Message]) -> bytes:
    parts = [MAGIC, struct.pack(">I", len(messages))]
    for m in messages:
        topic = m.topic.encode("utf-8")
        if not 0 <= m.qos <= 2:
            raise SpoolError(f"bad qos {m.qos}")
        parts.append(struct.pack(">BH", m.qos | (4 if m.retain else 0), len(topic)))
        parts.append(topic)
        parts.append(struct.pack(">I", len(m.payload)))
        parts.append(bytes(m.payload))
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def decode_record(data: bytes) -> list[Message]:
    if len(data) < len(MAGIC) + 4 + 32 or not data.startswith(MAGIC):
        raise SpoolError("not a spool record")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise SpoolError("checksum mismatch (torn or damaged file)")
    pos = len(MAGIC)
    (count,) = struct.unpack_from(">I", body, pos)
    pos += 4
    out = []
    try:
        for _ in range(count):
            flags, tlen = struct.unpack_from(">BH", body, pos)
            pos += 3
            topic = body[pos : pos + tlen].decode("utf-8")
            pos += tlen
            (plen,) = struct.unpack_from(">I", body, pos)
            pos += 4
            payload = body[pos : pos + plen]
            if len(payload) != plen:
                raise SpoolError("truncated payload")
            pos += plen
            out.append(Message(topic, payload, flags & 3, bool(flags & 4)))
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpoolError(f"malformed record: {exc}") from exc
    if pos != len(body):
        raise SpoolError("trailing bytes after the last message")
    return out


class Spool:
    """Thread-safe: one thread may append while another peeks and removes."""

    def __init__(self, directory: str | Path, max_bytes: int, fsync: bool = True):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.dir = Path(directory)
        self.max_bytes = int(max_bytes)
        self.fsync = fsync
        self.dropped = 0  # records dropped because the spool was full
        self.damaged = 0  # records found unreadable and moved to bad/ (MQTT stats: spool_quarantined)
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        for f in self.dir.glob("*" + SUFFIX):
            try:
                self._sizes[int(f.stem)] = f.stat().st_size
            except (ValueError, OSError):
                self._quarantine(f, "unexpected file name")
        self._next = max(self._sizes, default=0) + 1
        if self._sizes:
            log.info("spool %s: %d record(s) waiting (%.1f MB)", self.dir, len(self._sizes), self.total_bytes / 1e6)

    # ------------------------------------------------------------------ info
    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def status(self) -> SpoolStatus:
        return SpoolStatus(records=len(self), total_bytes=self.total_bytes, max_bytes=self.max_bytes,
                           dropped=self.dropped, quarantined=self.damaged)

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:016d}{SUFFIX}"

    # ------------------------------------------------------------------ writing
    def append(self, messages: list[Message]) -> int | None:
        """Store a record; returns its sequence number, or None if it alone exceeds the limit."""
        data = encode_record(messages)
        if len(data) > self.max_bytes:
            with self._lock:
                self.dropped += 1
            log.error(
                "spool: a record of %d bytes is larger than the whole spool (%d bytes); dropped (%d dropped so far)",
                len(data),
                self.max_bytes,
                self.dropped,
            )
            return None
        with self._lock:
            while self._sizes and self.total_bytes + len(data) > self.max_bytes:
                oldest = min(self._sizes)
                self._delete(oldest)
                self.dropped += 1
                log.warning(
                    "spool full (%d bytes max): dropped the oldest record %d (%d dropped so far)",
                    self.max_bytes,
                    oldest,
                    self.dropped,
                )
            seq = self._next
            self._next += 1
            path = self._path(seq)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            self._sizes[seq] = len(data)
        return seq

    # ------------------------------------------------------------------ reading
    def peek(self) -> Record | None:
        """The oldest readable record, or None when empty. Damaged files are moved to bad/."""
        while True:
            with self._lock:
                if not self._sizes:
                    return None
                seq = min(self._sizes)
                path = self._path(seq)
                try:
                    data = path.read_bytes()
                    return Record(seq, decode_record(data), len(data))
                except (OSError, SpoolError) as exc:
                    self._sizes.pop(seq, None)
                    self._quarantine(path, str(exc))

    def remove(self, seq: int) -> None:
        with self._lock:
            self._delete(seq)

    def _delete(self, seq: int) -> None:
        self._sizes.pop(seq, None)
        self._path(seq).unlink(missing_ok=True)

    def _quarantine(self, path: Path, why: str) -> None:
        self.damaged += 1
        bad = self.dir / "bad"
        bad.mkdir(exist_ok=True)
        try:
            os.replace(path, bad / path.name)
        except OSError:
            path.unlink(missing_ok=True)
        log.error("spool: record %s is unreadable (%s); moved to %s", path.name, why, bad)
