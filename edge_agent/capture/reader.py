"""The capture thread of one camera: source -> latest-frame slot, forever.

- Every good frame gets the next seq number and ts=time.time() and goes into the slot (put never
  blocks), then to the on_frame callbacks (cheap observers; an exception there is logged and
  counted as 'errors', it never stops capture).
- A bad frame (a failed read of a live stream, a wrong shape or dtype) is skipped and counted
  as 'bad_frames'.
- A lost stream (open fails, the capture closes, or MAX_READ_FAILURES reads in a row fail) is
  retried with exponential backoff from reconnect_initial_s up to reconnect_max_s, forever.
  Loss and recovery are logged (recovery with how long the stream was down); every successful
  re-open after a loss counts one 'reconnects'; stats state 'connected' follows the link.
- A file without loop ends cleanly at the end of the clip: the thread exits and `finished` is True.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.capture.source import SourceError, VideoSource, describe, open_source
from edge_agent.config.schema import CameraConfig
from edge_agent.pipeline.events import Frame
from edge_agent.pipeline.stats import CameraStats

log = logging.getLogger(__name__)

MAX_READ_FAILURES = 5  # failed reads in a row that mean the stream is lost


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
        on_frame: Iterable[Callable[[Frame], None]] = (),
        *,
        opener: Callable[..., VideoSource] = open_source,
    ):
        self.camera = camera
        self.slot = slot
        self.stats = stats
        self.stop = stop
        self.on_frame = list(on_frame)
        self.finished = False  # a non-looping file reached its end
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
        name = self.camera.name
        delay = cfg.reconnect_initial_s
        ever_connected = False
        lost_since = time.monotonic()  # start of the current outage (or of the first attempt)
        warned = False  # the current outage has been logged
        while not self.stop.is_set():
            source = None
            try:
                source = self._opener(cfg)
            except SourceError as exc:
                if not warned:
                    log.warning(
                        "camera %s: %s; retrying with backoff %.1f..%.1f s",
                        name,
                        exc,
                        cfg.reconnect_initial_s,
                        cfg.reconnect_max_s,
                    )
                    warned = True
                else:
                    log.debug("camera %s: retry failed: %s", name, exc)
            except Exception:  # an unexpected backend error must not kill capture
                log.exception("camera %s: opening %s failed", name, self._name)
                warned = True
            if source is None:
                self.stats.set_state(connected=False)
                self.stop.wait(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue

            if ever_connected:
                self.stats.inc("reconnects")
                log.info(
                    "camera %s: stream %s recovered after %.1f s down",
                    name,
                    self._name,
                    time.monotonic() - lost_since,
                )
            else:
                log.info("camera %s: connected to %s", name, self._name)
            ever_connected = True
            warned = False
            delay = cfg.reconnect_initial_s
            self.stats.set_state(connected=True)
            try:
                ended = self._read_until_lost(source)
            finally:
                source.release()
                self.stats.set_state(connected=False)
            if ended:
                self.finished = True
                log.info("camera %s: %s finished (end of clip)", name, self._name)
                return
            if self.stop.is_set():
                return
            lost_since = time.monotonic()
            warned = True
            log.warning(
                "camera %s: stream %s lost; reconnecting with backoff %.1f..%.1f s",
                name,
                self._name,
                cfg.reconnect_initial_s,
                cfg.reconnect_max_s,
            )
            self.stop.wait(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

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
            for fn in self.on_frame:
                try:
                    fn(frame)
                except Exception:
                    self.stats.inc("errors")
                    log.exception("camera %s: on_frame callback failed", self.camera.name)
        return False


def _shape(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"shape {image.shape}, dtype {image.dtype}"
    return type(image).__name__
