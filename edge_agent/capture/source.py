"""Frame sources: an RTSP/HTTP URL, a video file (optionally looping) or a V4L2 device, via OpenCV.

open_source(cfg) returns a VideoSource with read() -> BGR ndarray | None and release().
- read() returns None for a frame that could not be read; for a file without loop it also sets
  `ended` once the clip is over (the caller tells 'finished' from 'lost' by that flag).
- Pacing: cfg.fps_limit caps the rate. A file is paced to its own fps by default so a clip plays in
  real time (cfg.fps_limit overrides it; open_source(cfg, pace=False) reads as fast as possible).
  A live stream is never slept on (that would let the stream's buffer grow stale): frames that come
  faster than fps_limit are grabbed and discarded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config.schema import SourceConfig

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 5000  # FFmpeg backend: give up connecting to a stream after this long
READ_TIMEOUT_MS = 5000  # FFmpeg backend: a read that waits longer than this fails
_MAX_FILE_FPS = 240.0  # a file reporting a larger (or no) fps is read unpaced


class SourceError(RuntimeError):
    """The source could not be opened."""


def describe(cfg: SourceConfig) -> str:
    """A short, log-friendly name of the source (a URL's credentials are hidden)."""
    if cfg.url is not None:
        url = cfg.url
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url
    if cfg.file is not None:
        return f"file {cfg.file}"
    return f"device {cfg.device}"


def _device_arg(device: int | str) -> int | str:
    if isinstance(device, int):
        return device
    s = str(device).strip()
    if s.isdigit():
        return int(s)
    if s.startswith("/dev/video") and s[len("/dev/video") :].isdigit():
        return int(s[len("/dev/video") :])
    return s


class VideoSource:
    """One opened OpenCV capture plus pacing and file looping."""

    def __init__(self, cfg: SourceConfig, cap: cv2.VideoCapture, *, pace: bool = True):
        self.cfg = cfg
        self.name = describe(cfg)
        self.is_file = cfg.file is not None
        self.ended = False
        self._cap = cap
        self._last = 0.0
        fps = cfg.fps_limit
        if fps is None and self.is_file and pace:
            file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            fps = file_fps if 0.0 < file_fps <= _MAX_FILE_FPS else None
        self.fps = fps
        self._interval = 1.0 / fps if fps else 0.0

    # ------------------------------------------------------------------ reading
    def read(self) -> np.ndarray | None:
        if self.ended:
            return None
        if self.is_file:
            self._sleep_until_due()
            image = self._read_file()
        else:
            image = self._read_live()
        if image is not None:
            self._last = time.monotonic()
        return image

    def _sleep_until_due(self) -> None:
        if self._interval and self._last:
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def _read_file(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if ok:
            return image
        if not self.cfg.loop:
            self.ended = True
            return None
        # rewind; some containers refuse seeking, then reopen the file
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._cap.read()
        if not ok:
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.cfg.file))
            ok, image = self._cap.read()
        return image if ok else None

    def _read_live(self) -> np.ndarray | None:
        if self._interval and self._last:
            # grab at least one new frame; discard those that arrive before the next one is due
            # (grab() skips the colour conversion, so discarding is cheap)
            while True:
                if not self._cap.grab():
                    return None
                if time.monotonic() >= self._last + self._interval:
                    break
            ok, image = self._cap.retrieve()
        else:
            ok, image = self._cap.read()
        return image if ok else None

    def is_opened(self) -> bool:
        return bool(self._cap.isOpened())

    def release(self) -> None:
        self._cap.release()


def open_source(cfg: SourceConfig, *, pace: bool = True) -> VideoSource:
    """Open the configured source; raises SourceError (naming the source) when it cannot be opened."""
    name = describe(cfg)
    if cfg.url is not None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            READ_TIMEOUT_MS,
        ]
        cap = cv2.VideoCapture(cfg.url, cv2.CAP_FFMPEG, params)
    elif cfg.file is not None:
        path = Path(cfg.file)
        if not path.is_file():
            raise SourceError(f"{name}: no such file")
        cap = cv2.VideoCapture(str(path))
    else:
        cap = cv2.VideoCapture(_device_arg(cfg.device), cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{name}: could not be opened")
    return VideoSource(cfg, cap, pace=pace)
