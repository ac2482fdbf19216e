"""ConfigStore: the current validated config, its file, atomic saves and change listeners.

A save never leaves a half-written or invalid file behind, even when the process is killed in the
middle of it:
1. the new config is dumped to YAML and parsed back through the same schema (what is written is
   exactly what the next start will read);
2. the text goes to a temporary file in the same folder, which is flushed and fsync'ed;
3. the previous file is kept as ``<name>.bak`` (a hard link made under a temporary name and renamed
   over the old backup, so the main file never disappears; a copy where links are not supported);
4. the temporary file is renamed over the config file (atomic on POSIX) and the folder is fsync'ed.
At any instant the config path names either the complete old file or the complete new one.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import yaml

from edge_agent.config.loader import ConfigError, dump_config, load_config, parse_config
from edge_agent.config.schema import AgentConfig

log = logging.getLogger(__name__)

Listener = Callable[[AgentConfig, AgentConfig], None]  # (old, new)


class ConfigStore:
    def __init__(self, path: str | Path, config: AgentConfig | None = None):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._config = config if config is not None else load_config(self.path)
        self._remove_stale_temps()

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    @property
    def lock(self) -> threading.RLock:
        """Held by callers that read, change and save as one step (e.g. the config API)."""
        return self._lock

    def add_listener(self, fn: Listener) -> None:
        """fn(old, new) is called after every successful save (exceptions are logged, not raised)."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def save(self, new: AgentConfig) -> AgentConfig:
        """Validate `new` through a YAML round trip, write it atomically, then notify listeners.

        Raises ConfigError when the config does not survive the round trip (nothing is written).
        Returns the config as it will be read back from the file.
        """
        text, checked = self._round_trip(new)
        with self._lock:
            old = self._config
            self._write_atomic(text)
            self._config = checked
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(old, checked)
            except Exception:
                log.exception("config change listener %r failed", fn)
        return checked

    def check(self, new: AgentConfig) -> AgentConfig:
        """Raise ConfigError unless `new` survives the YAML round trip that save() does."""
        return self._round_trip(new)[1]

    def _round_trip(self, new: AgentConfig) -> tuple[str, AgentConfig]:
        try:
            text = dump_config(new)
            text.encode("utf-8")  # e.g. lone surrogates from JSON cannot be written
            checked = parse_config(text, str(self.path))
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise ConfigError(str(self.path), [f"cannot be written as YAML: {type(exc).__name__}"]) from None
        if checked != new:
            raise ConfigError(
                str(self.path), ["the config does not read back as written (unsupported value)"]
            )
        return text, checked

    def reload(self) -> AgentConfig:
        """Read the file again (e.g. after a manual edit); raises ConfigError and keeps the old config."""
        with self._lock:
            self._config = load_config(self.path)
            return self._config

    # ------------------------------------------------------------------ file handling
    def _temp_prefix(self) -> str:
        return f".{self.path.name}.tmp-"

    def _remove_stale_temps(self) -> None:
        """Temporary files left by a save that was killed; the config file itself is intact."""
        folder = self.path.parent
        if not folder.is_dir():
            return
        for p in folder.glob(self._temp_prefix() + "*"):
            try:
                p.unlink()
            except OSError:
                pass

    def _write_atomic(self, text: str) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        mode = 0o600
        if self.path.exists():
            mode = self.path.stat().st_mode & 0o777
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=self._temp_prefix())
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            if self.path.exists():
                self._keep_backup(folder)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)

    def _keep_backup(self, folder: Path) -> None:
        link = folder / f"{self._temp_prefix()}bak-{secrets.token_hex(8)}"
        try:
            os.link(self.path, link)
        except OSError:
            shutil.copy2(self.path, link)  # file systems without hard links
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
