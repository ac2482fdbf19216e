"""Small helpers every layer shares: image encoding (JPEG, PNG), sha256, UTC time stamps and
time-sortable ids. Nothing here knows about events, alerts or publishers."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime, timezone

import cv2
import numpy as np


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image, [int(cv2.IMWRITE_PNG_COMPRESSION), 3])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds, e.g. 2025-01-31T22:14:03.250Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_id(*parts: str, ts: float | None = None) -> str:
    """Stable, sortable, unique: <utc time with ms>-<parts...>-<8 random hex>."""
    ts = time.time() if ts is None else ts
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ts)) + f"{int((ts % 1) * 1000):03d}Z"
    return "-".join([stamp, *parts, uuid.uuid4().hex[:8]])
