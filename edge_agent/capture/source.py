"""Frame sources: an RTSP/HTTP URL, a video file (optionally looping) or a V4L2 device, via OpenCV.

open_source(cfg) returns a VideoSource with read() -> BGR ndarray | None and release().
- read() returns None for a frame that could not be read; for a file without loop it also sets
  `ended` once the clip is over (the caller tells 'finished' from 'lost' by that flag).
- Pacing: cfg.fps_limit caps the rate. A file is paced to its own fps by default so a clip plays in
  real time (cfg.fps_limit overrides it; open_source(cfg, pace=False) reads as fast as possible).
  A live stream is never slept on (that would let the stream's buffer grow stale): frames that come
  faster than fps_limit are grabbed and discarded.
- A file that opens but yields no frame at all is `ended` too, with `error` saying so (a looping
  file would otherwise be re-read forever).
- Streams: unless the environment says otherwise, FFmpeg reads RTSP over TCP and probes a new
  stream for 1 s (not 5), so a camera delivers its first frame about a second after connecting
  (OPENCV_FFMPEG_CAPTURE_OPTIONS overrides both). FFmpeg's and OpenCV's own console messages
  (one per failed attempt) are silenced; the capture thread logs what matters, rate-limited
  (OPENCV_FFMPEG_LOGLEVEL / OPENCV_LOG_LEVEL bring them back).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config.schema import SourceConfig

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 5000  # FFmpeg backend: give up connecting to a stream after this long
READ_TIMEOUT_MS = 5000  # FFmpeg backend: a read that waits longer than this fails
_MAX_FILE_FPS = 240.0  # a file reporting a larger (or no) fps is read unpaced
FFMPEG_CAPTURE_OPTIONS = "rtsp_transport;tcp|analyzeduration;1000000"

# read by OpenCV at every FFmpeg open (the options) and at the first one (the log level)
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL: no "[rtsp @ ...]" line per retry
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pass|pwd|token|key)=)[^&#]*")


class SourceError(RuntimeError):
    """The source could not be opened."""


def hide_password(url: str) -> str:
    """url with its password (and password-like query values) replaced by ***; the user stays."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        if "@" in authority:
            login, host = authority.rsplit("@", 1)
            user = login.split(":", 1)[0]
            authority = f"{user}:***@{host}" if ":" in login else f"{login}@{host}"
        url = f"{scheme}://{authority}{slash}{tail}"
    return _SECRET_QUERY.sub(r"\1***", url)


def describe(cfg: SourceConfig) -> str:
    """A short, log-friendly name of the source (a URL's password is hidden, its user is not)."""
    if cfg.url is not None:
        return hide_password(cfg.url)
    if cfg.file is not None:
        return f"file {cfg.file}"
    return f"device {cfg.device}"


def explain_failure(cfg: SourceConfig) -> str:
    """Why a source that did not open is not there, in words (asks an RTSP camera; see probe.py)."""
    if cfg.url is not None:
        from edge_agent.capture.probe import explain

        try:
            return explain(cfg.url)
        except Exception as exc:  # a diagnosis must never break capture
            return f"could not be diagnosed ({type(exc).__name__})"
    if cfg.file is not None:
        return "no such file" if not Path(cfg.file).is_file() else "the file could not be decoded"
    return "no such device or it is busy"


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
        self.error: str | None = None  # why a file ended without giving a single frame
        self.frames_read = 0
        self._cap = cap
        self._last = 0.0
        self._due = 0.0  # a paced file: when the next frame is due (a fixed schedule, not read + interval)
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
            self.frames_read += 1
        return image

    def _sleep_until_due(self) -> None:
        """Frames of a paced file are due every interval on a fixed schedule, so the time a read
        takes (decoding a 1080p frame: ~10 ms) does not slow the rate; after a stall longer than
        one interval the schedule starts again from now (no burst to catch up)."""
        if not self._interval:
            return
        now = time.monotonic()
        if self._due and self._due > now:
            time.sleep(self._due - now)
            now = self._due
        self._due = (self._due if self._due and now - self._due < self._interval else now) + self._interval

    def _read_file(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if ok:
            return image
        if not self.cfg.loop or self.frames_read == 0:
            self.ended = True
            if self.frames_read == 0:
                self.error = "the file opened but no frame could be decoded"
            return None
        # rewind; some containers refuse seeking, then reopen the file
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._cap.read()
        if not ok:
            self._cap.release()
            self._cap = _open_file(self.cfg)
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


def _decoder_params(cfg: SourceConfig) -> list[int]:
    return [cv2.CAP_PROP_N_THREADS, cfg.decoder_threads] if cfg.decoder_threads else []


def _open_file(cfg: SourceConfig) -> cv2.VideoCapture:
    """A file through ffmpeg (decoder threads as configured); what ffmpeg cannot open (an image
    sequence pattern) through OpenCV's other backends."""
    cap = cv2.VideoCapture(str(cfg.file), cv2.CAP_FFMPEG, _decoder_params(cfg))
    if not cap.isOpened():
        cap.release()
        cap = cv2.VideoCapture(str(cfg.file))
    return cap


def open_source(cfg: SourceConfig, *, pace: bool = True) -> VideoSource:
    """Open the configured source; raises SourceError (naming the source) when it cannot be opened."""
    name = describe(cfg)
    if cfg.url is not None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            READ_TIMEOUT_MS,
            *_decoder_params(cfg),
        ]
        cap = cv2.VideoCapture(cfg.url, cv2.CAP_FFMPEG, params)
    elif cfg.file is not None:
        path = Path(cfg.file)
        if not path.is_file():
            raise SourceError(f"{name}: no such file")
        cap = _open_file(cfg)
    else:
        cap = cv2.VideoCapture(_device_arg(cfg.device), cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{name}: could not be opened")
    return VideoSource(cfg, cap, pace=pace)
