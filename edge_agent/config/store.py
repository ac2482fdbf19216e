"""ConfigStore: the running config (installer's base + box's overlay), atomic saves.

One owner per file. The base file (``agent.yaml``) is the installer's: Ansible renders it and this
store never writes it. Every change made on the box (config API, web page, MQTT live commands) is
saved to the overlay beside it (``agent.local.yaml``, see overlay.py and layers.py): only the keys
that differ from the base, cameras matched by name. The camera list itself belongs to the base: a
change that adds, removes, renames or reorders cameras is refused (do that in the inventory).

A save never leaves a half-written or invalid overlay behind, even when the process is killed in
the middle of it:
1. the overlay is computed from the base and the new config, dumped to YAML and read back through
   the same merge and schema as at start (what is written is exactly what the next start reads);
2. the text goes to a temporary file in the same folder, which is flushed and fsync'ed;
3. the previous overlay is kept as ``agent.local.yaml.bak`` (a hard link made under a temporary name
   and renamed over the old backup, so the overlay never disappears; a copy where links are not
   supported);
4. the temporary file is renamed over the overlay (atomic on POSIX) and the folder is fsync'ed.
At any instant the overlay path names either the complete old file or the complete new one. A
change that leaves no key different from the base moves the overlay to its ``.bak`` (one rename),
and so does a reset (reset_overlay): then the base alone applies.

Overlay entries for cameras the base no longer has are ignored (layers.py) but kept in the file on
every save, so re-adding the camera brings its tuning back; a reset drops them.
"""

from __future__ import annotations

import copy
import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edge_agent.config import overlay as ov
from edge_agent.config.layers import apply_overlay, load_layers, parse_overlay, read_base
from edge_agent.config.loader import ConfigError, config_to_data
from edge_agent.config.schema import AgentConfig

log = logging.getLogger(__name__)


HEADER = (
    "# On-box changes over {base}, written by the agent (config API, web page, MQTT commands).\n"
    "# Only the keys that differ from {base}; cameras matched by name; null = back to the default.\n"
    "# A deploy never touches this file. Reset: DELETE /api/config/overlay, or remove the file and\n"
    "# restart the agent. See docs/config-ownership.md.\n"
)


class ConfigStore:
    def __init__(self, path: str | Path, config: AgentConfig | None = None):
        self.path = Path(path)  # the base file (the installer's)
        self.overlay_path = ov.overlay_path_for(self.path)
        self._lock = threading.RLock()
        layers = load_layers(self.path, self.overlay_path, warn=config is None)
        self._base_data, self._base = layers.base_data, layers.base
        self._overlay = layers.overlay
        self._stale = ov.camera_entries(layers.overlay, layers.ignored_cameras)
        self._config = config if config is not None else layers.config
        self._remove_stale_temps()

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def base(self) -> AgentConfig:
        """The installer's base config alone."""
        return self._base

    @property
    def overlay(self) -> dict[str, Any]:
        """The overlay as saved (secrets in clear: never send it out as it is)."""
        return copy.deepcopy(self._overlay)

    @property
    def ignored_cameras(self) -> list[str]:
        return [e["name"] for e in self._stale]

    @property
    def backup_path(self) -> Path:
        return self.overlay_path.with_name(self.overlay_path.name + ".bak")

    @property
    def lock(self) -> threading.RLock:
        """Held by callers that read, change and save as one step (e.g. the config API)."""
        return self._lock

    def save(self, new: AgentConfig) -> AgentConfig:
        """Save `new` as the overlay over the base (atomically).

        Raises ConfigError when `new` changes the camera list or does not survive the round trip
        through the overlay file (nothing is written). Returns the config as the next start reads it.
        """
        with self._lock:
            text, checked, data = self._round_trip(new)
            if text is None:
                self._move_aside()
            else:
                self._write_atomic(text)
            self._config, self._overlay = checked, data
        return checked

    def check(self, new: AgentConfig) -> AgentConfig:
        """Raise ConfigError unless `new` survives the round trip that save() does."""
        with self._lock:
            return self._round_trip(new)[1]

    def reset_overlay(self, apply: Callable[[AgentConfig], Any] | None = None) -> AgentConfig:
        """Drop every on-box change: the base file (read again) alone applies. `apply(base)` runs
        first (the running agent); if it raises, nothing changed. The overlay becomes its .bak."""
        with self._lock:
            base_data, base = read_base(self.path)
            if apply is not None:
                apply(base)
            self._move_aside()
            self._base_data, self._base, self._overlay, self._stale = base_data, base, {}, []
            self._config = base
        log.info("on-box changes reset: %s moved to %s; %s applies alone", self.overlay_path,
                 self.backup_path.name, self.path)
        return base

    # ------------------------------------------------------------------ overlay text
    def _round_trip(self, new: AgentConfig) -> tuple[str | None, AgentConfig, dict[str, Any]]:
        names, base_names = [c.name for c in new.cameras], [c.name for c in self._base.cameras]
        if names != base_names:
            raise ConfigError(str(self.overlay_path), [
                f"cameras: the camera list belongs to the base config {self.path} ({', '.join(base_names)}): "
                "add, remove, rename or reorder cameras there (the installer's inventory), not on the box"
            ])
        try:
            data = ov.diff(config_to_data(self._base, reveal_secrets=True), config_to_data(new, reveal_secrets=True))
            if self._stale:
                data.setdefault("cameras", []).extend(copy.deepcopy(self._stale))
            if not data and new == self._base:
                return None, self._base, {}
            body = ov.dump(data)
            text = HEADER.format(base=self.path.name) + body
            text.encode("utf-8")  # e.g. lone surrogates from JSON cannot be written
            parsed = parse_overlay(text, str(self.overlay_path))
            checked, _ = apply_overlay(self._base_data, parsed, text, str(self.overlay_path))
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise ConfigError(str(self.overlay_path), [f"cannot be written as YAML: {type(exc).__name__}"]) from None
        if checked != new:
            raise ConfigError(
                str(self.overlay_path), ["the config does not read back as written (unsupported value)"]
            )
        return text, checked, parsed

    # ------------------------------------------------------------------ file handling
    def _temp_prefix(self, target: Path | None = None) -> str:
        return f".{(target or self.overlay_path).name}.tmp-"

    def _remove_stale_temps(self) -> None:
        """Temporary files left by a save that was killed; the files themselves are intact."""
        folder = self.overlay_path.parent
        if not folder.is_dir():
            return
        for prefix in {self._temp_prefix(), self._temp_prefix(self.path)}:  # (older agents wrote the base)
            for p in folder.glob(prefix + "*"):
                try:
                    p.unlink()
                except OSError:
                    pass

    def _write_atomic(self, text: str) -> None:
        target = self.overlay_path
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=self._temp_prefix())
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            if target.exists():
                self._keep_backup(folder)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)

    def _move_aside(self) -> None:
        """The overlay becomes its .bak (one atomic rename); nothing to do when there is none."""
        if self.overlay_path.exists():
            os.replace(self.overlay_path, self.backup_path)
            _fsync_dir(self.overlay_path.parent)

    def _keep_backup(self, folder: Path) -> None:
        link = folder / f"{self._temp_prefix()}bak-{secrets.token_hex(8)}"
        try:
            os.link(self.overlay_path, link)
        except OSError:
            shutil.copy2(self.overlay_path, link)  # file systems without hard links
            with open(link, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(link, self.backup_path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms that cannot open folders
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
