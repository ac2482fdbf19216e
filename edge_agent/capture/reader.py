"""The capture thread of one camera: source -> latest-frame slot, until stop or the end of a clip.

- Every good frame gets the next seq number and ts=time.time() and goes into the slot (put never
  blocks).
- A bad frame (a failed read of a live stream, a wrong shape or dtype) is skipped and counted
  as 'bad_frames'.
- A stream (URL or device) that cannot be opened, closes, or fails MAX_READ_FAILURES reads in a
  row is retried with exponential backoff from reconnect_initial_s up to reconnect_max_s, forever.
  While the camera's host:port refuses connections (camera rebooting, server down) the wait is cut
  short as soon as it accepts them again (checked every REACHABLE_POLL_S), so frames flow again
  about a second after the camera is back whatever the backoff had grown to.
  Logging is rate-limited: one WARNING when an outage starts (a failed open says why, in words:
  wrong user or password, no stream at this path, connection refused... never the password), the
  retries at DEBUG, a reminder every LOG_REPEAT_S while it lasts, and one INFO at recovery with how
  long the stream was down. Every successful re-open after a loss counts one 'reconnects'; stats
  state 'connected' follows the link.
- A file ends: at the end of a clip without loop the thread exits with `finished` True. A file that
  cannot be opened (missing, unreadable, no decodable frame) is an ERROR naming the camera and the
  file; it is not retried and counts as ended too (`finished` True, `failed` says why), so
  `edge-agent run` still stops once every file source has ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from edge_agent.capture.probe import reachable
from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.capture.source import SourceError, VideoSource, describe, explain_failure, open_source
from edge_agent.config.schema import CameraConfig
from edge_agent.pipeline.stats import CameraStats
from edge_agent.records import Frame

log = logging.getLogger(__name__)

MAX_READ_FAILURES = 5  # failed reads in a row that mean the stream is lost
LOG_REPEAT_S = 300.0  # while an outage lasts, a WARNING reminder at most this often
REACHABLE_POLL_S = 0.5  # while the camera's port refuses connections, look again this often


def valid_image(image: object) -> bool:
    """A BGR uint8 HxWx3 array with at least one pixel."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )


class CaptureThread:
    def __init__(
        self,
        camera: CameraConfig,
        slot: LatestFrameSlot,
        stats: CameraStats,
        stop: threading.Event,
        *,
        opener: Callable[..., VideoSource] = open_source,
    ):
        self.camera = camera
        self.slot = slot
        self.stats = stats
        self.stop = stop
        self.finished = False  # a file source ended (end of a clip, or it could not be opened)
        self.failed: str | None = None  # why a file source ended without playing (else None)
        self.seq = 0
        self._opener = opener
        self._name = describe(camera.source)
        self._thread = threading.Thread(target=self._run, name=f"capture-{camera.name}", daemon=True)

    # ------------------------------------------------------------------ thread API
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        cfg = self.camera.source
        delay = cfg.reconnect_initial_s
        ever_connected = False
        outage = _Outage(time.monotonic())  # the first attempt counts as the start of an outage
        while not self.stop.is_set():
            source = self._open(outage)
            if source is _GAVE_UP:
                return
            if source is None:
                self.stats.set_state(connected=False)
                self._wait_backoff(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue
            self._log_connected(ever_connected, outage)
            ever_connected = True
            delay = cfg.reconnect_initial_s
            if self._play(source) or self.stop.is_set():
                return
            outage = self._lost()
            self._wait_backoff(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

    def _open(self, outage: _Outage):
        """The opened source; None to retry after the backoff; _GAVE_UP for a file that cannot play."""
        cfg, name = self.camera.source, self.camera.name
        try:
            return self._opener(cfg)
        except SourceError as exc:
            if cfg.file is not None:
                self._file_failed(explain_failure(cfg))
                return _GAVE_UP
            self._open_failed(outage, exc)
        except Exception as exc:  # an unexpected backend error must not kill capture
            log.exception("camera %s: opening %s failed", name, self._name)
            if cfg.file is not None:
                self._file_failed(f"{type(exc).__name__}: {exc}")
                return _GAVE_UP
            outage.logged(time.monotonic())
        return None

    def _log_connected(self, ever_connected: bool, outage: _Outage) -> None:
        if ever_connected:
            self.stats.inc("reconnects")
            log.info("camera %s: stream %s recovered after %.1f s down", self.camera.name, self._name,
                     time.monotonic() - outage.since)
        else:
            log.info("camera %s: connected to %s", self.camera.name, self._name)

    def _play(self, source: VideoSource) -> bool:
        """Read the source until lost (False) or the end of a file (True: capture is over)."""
        self.stats.set_state(connected=True)
        try:
            ended = self._read_until_lost(source)
        finally:
            source.release()
            self.stats.set_state(connected=False)
        if not ended:
            return False
        if source.error and self.camera.source.file is not None:
            self._file_failed(source.error)
        else:
            self.finished = True
            log.info("camera %s: %s finished (end of clip)", self.camera.name, self._name)
        return True

    def _lost(self) -> _Outage:
        cfg = self.camera.source
        outage = _Outage(time.monotonic())
        outage.logged(outage.since)
        log.warning("camera %s: stream %s lost; reconnecting with backoff %.1f..%.1f s",
                    self.camera.name, self._name, cfg.reconnect_initial_s, cfg.reconnect_max_s)
        return outage

    def _open_failed(self, outage: _Outage, exc: SourceError) -> None:
        """Log a failed open of a stream: WARNING at the start of an outage and every LOG_REPEAT_S."""
        cfg, name = self.camera.source, self.camera.name
        outage.attempts += 1
        now = time.monotonic()
        if not outage.due(now):
            log.debug("camera %s: retry %d failed: %s", name, outage.attempts, exc)
            return
        why = explain_failure(cfg)
        if outage.last_log is None:
            log.warning(
                "camera %s: cannot open %s: %s; retrying with backoff %.1f..%.1f s "
                "(logged again every %.0f s while it fails)",
                name, self._name, why, cfg.reconnect_initial_s, cfg.reconnect_max_s, LOG_REPEAT_S,
            )  # fmt: skip
        else:
            log.warning(
                "camera %s: still cannot open %s after %d attempt(s) over %.0f s: %s",
                name, self._name, outage.attempts, now - outage.since, why,
            )  # fmt: skip
        outage.logged(now)

    def _file_failed(self, why: str) -> None:
        self.failed = why
        self.finished = True
        self.stats.set_state(connected=False)
        log.error(
            "camera %s: %s cannot be played: %s; not retried, this source counts as ended",
            self.camera.name,
            self._name,
            why,
        )

    def _wait_backoff(self, delay: float) -> None:
        """Wait delay seconds (or until stop); cut short when a refusing camera accepts again."""
        url = self.camera.source.url
        if url is None or reachable(url, timeout=REACHABLE_POLL_S):
            self.stop.wait(delay)  # nothing to watch, or it is up and refuses the stream itself
            return
        deadline = time.monotonic() + delay
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            t = time.monotonic()
            if reachable(url, timeout=min(REACHABLE_POLL_S, left)):
                return
            self.stop.wait(max(0.0, min(left, REACHABLE_POLL_S - (time.monotonic() - t))))

    def _read_until_lost(self, source: VideoSource) -> bool:
        """Read until stop, loss (returns False) or the end of a non-looping file (returns True)."""
        failures = 0
        while not self.stop.is_set():
            image = source.read()
            if image is None:
                if source.ended:
                    return True
                failures += 1
                self.stats.inc("bad_frames")
                if failures >= MAX_READ_FAILURES or not source.is_opened():
                    return False
                continue
            if not valid_image(image):
                failures += 1
                self.stats.inc("bad_frames")
                log.debug("camera %s: skipped a bad frame (%s)", self.camera.name, _shape(image))
                if failures >= MAX_READ_FAILURES * 20:  # a source that only yields garbage is lost too
                    return False
                continue
            failures = 0
            self.seq += 1
            frame = Frame(camera=self.camera.name, seq=self.seq, ts=time.time(), image=image)
            self.stats.inc("frames")
            self.slot.put(frame)
        return False


_GAVE_UP = object()  # _open: a file source that cannot be played (capture ends)


class _Outage:
    """One stretch of time without a stream: when it began, attempts, when it was last logged."""

    def __init__(self, since: float):
        self.since = since
        self.attempts = 0
        self.last_log: float | None = None

    def due(self, now: float) -> bool:
        return self.last_log is None or now - self.last_log >= LOG_REPEAT_S

    def logged(self, now: float) -> None:
        self.last_log = now


def _shape(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"shape {image.shape}, dtype {image.dtype}"
    return type(image).__name__
