"""Where the control room keeps things: the index (SQLite in the store folder, or PostgreSQL) and
the image and message files (the store folder, or an S3-compatible object store). One interface
each, so the store, the console and retention never know which.

SQL is written once, in the dialect both speak (`?` placeholders, ON CONFLICT, CASE, RETURNING);
PostgreSQL gets `%s` placeholders and BIGSERIAL ids.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any


class Index:
    """A database connection shared by threads (one lock). query -> list of dicts; execute commits."""

    dialect = ""

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def execute(self, sql: str, params: tuple = ()) -> int:
        """Run one statement and commit; the number of rows it changed."""
        raise NotImplementedError

    def script(self, sql: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteIndex(Index):
    dialect = "sqlite"
    ID = "INTEGER PRIMARY KEY"

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.RLock()

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, params)
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            if self.db.in_transaction:  # an INSERT ... RETURNING
                self.db.commit()
            return rows

    def execute(self, sql: str, params: tuple = ()) -> int:
        with self._lock:
            cur = self.db.execute(sql, params)
            self.db.commit()
            return cur.rowcount

    def script(self, sql: str) -> None:
        with self._lock:
            self.db.executescript(sql)
            self.db.commit()

    def close(self) -> None:
        self.db.close()


class PostgresIndex(Index):
    dialect = "postgresql"
    ID = "BIGSERIAL PRIMARY KEY"

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._lock = threading.RLock()
        self.db = self._connect()

    def _connect(self):
        import psycopg
        from psycopg.rows import dict_row

        return psycopg.connect(self._dsn, row_factory=dict_row, autocommit=False)

    def _live(self):
        """The connection; a new one when the last one broke (the server restarted): the statement
        that found it broken failed, the next one runs again."""
        if self.db.closed or self.db.broken:
            self.db = self._connect()
        return self.db

    def _rollback(self) -> None:
        try:
            self.db.rollback()
        except Exception:  # a broken connection cannot roll back; _live replaces it
            pass

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            db = self._live()
            try:
                with db.cursor() as cur:
                    cur.execute(self._sql(sql), params)
                    rows = cur.fetchall() if cur.description else []
                db.commit()
                return [dict(r) for r in rows]
            except Exception:
                self._rollback()
                raise

    def execute(self, sql: str, params: tuple = ()) -> int:
        with self._lock:
            db = self._live()
            try:
                with db.cursor() as cur:
                    cur.execute(self._sql(sql), params)
                    n = cur.rowcount
                db.commit()
                return n
            except Exception:
                self._rollback()
                raise

    # Receivers started together on a fresh database would race their CREATE ... IF NOT EXISTS
    # (PostgreSQL raises a unique violation on its catalogue for the loser): a script runs under one
    # transaction-scoped advisory lock, so they take turns.
    SCRIPT_LOCK = 0x6E77_7363  # "nwsc"

    def script(self, sql: str) -> None:
        with self._lock:
            db = self._live()
            try:
                with db.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (self.SCRIPT_LOCK,))
                    for statement in (s.strip() for s in sql.split(";")):
                        if statement:
                            cur.execute(statement)
                db.commit()
            except Exception:
                self._rollback()
                raise

    def close(self) -> None:
        self.db.close()


class Blobs:
    """Files by key ('2026-12-03/site1/door/<event_id>/000-new.json')."""

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        """The bytes; OSError when there are none."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove one file (nothing when it is not there)."""
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError


class FolderBlobs(Blobs):
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} leaves the store folder")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        import shutil

        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        n = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return n


class S3Blobs(Blobs):
    def __init__(self, endpoint: str | None, bucket: str, access_key: str | None, secret_key: str | None,
                 region: str = "us-east-1"):
        import boto3

        self.bucket = bucket
        self.s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                               aws_secret_access_key=secret_key, region_name=region)
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception:
            try:
                self.s3.create_bucket(Bucket=bucket)
            except self.s3.exceptions.BucketAlreadyOwnedByYou:
                pass  # another receiver created it a moment ago

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        n = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                n += len(keys)
        return n
