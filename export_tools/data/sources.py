"""Where the training set's images come from: the tables and loaders `edge-export data build` reads.

Every source is one we may use: the shared T91 photos, scikit-image's bundled photos (never the held-out
ones of export_tools.data.images), scikit-learn's two sample photos (when scikit-learn is installed),
the training half of the dev faces (images.training_faces) and photos in Debian wallpaper packages,
fetched at build time with `apt-get download` + `dpkg -x`; each wallpaper's license is read from the
package's debian/copyright (DEP-5).

The wallpaper packages mix photographs with rendered art. The measured photo filter (build.is_photo)
drops the flat, few-colour renders, but KDE's renders carry enough grain and colours to pass it, so the
table below names the photographic wallpapers (checked by eye, Debian bookworm versions) and the filter
runs on them as a second check.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from export_tools.data.images import HELD_OUT_SKIMAGE, SHARED, list_images, read_rgb, training_faces

# scikit-image photos we train on; images.HELD_OUT_SKIMAGE (and its alias "cat" = chelsea) never appear
SKIMAGE_TRAIN = ("hubble_deep_field", "immunohistochemistry", "motorcycle_left", "retina",
                 "camera", "coins", "brick", "grass", "gravel", "moon")
SKIMAGE_LICENSE = "scikit-image bundled data (public domain / CC0 / CC BY, see skimage/data/README.txt)"
SKLEARN_LICENSE = "CC BY 2.0 (Flickr: danielbuechele, vultilion; see sklearn/datasets/images/README.txt)"
T91_FOLDER = "train_natural"
T91_LICENSE = "T91 (Yang et al. 2010), research redistribution, see ../shared/datasets/README.md"
FACES_LICENSE = "MIT (KAIR testsets/real_faces, Kai Zhang), see ../shared/datasets/README.md"

_PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                  "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
# Debian package -> globs (paths inside the .deb) of the photographs to take
DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "lomiri-wallpapers": ("usr/share/backgrounds/*", "usr/share/wallpapers/*/*"),
    "mate-backgrounds": ("usr/share/backgrounds/mate/nature/*",),
    "plasma-workspace-wallpapers": tuple(f"usr/share/wallpapers/{n}/contents/images/*" for n in _PLASMA_PHOTOS),
}
RASTER = {".jpg", ".jpeg", ".png"}
APT_TIMEOUT_S = 600


class FetchError(RuntimeError):
    pass


@dataclass
class Candidate:
    """One image a source offers. `fingerprint` is cheap (the file's bytes) where it can be: it keys the
    build cache, so a re-run does not decode an image whose source did not change."""

    name: str  # stable file stem inside the set
    source: str  # "t91", "skimage", "sklearn", "faces", "debian:<pkg>", "dir:<name>"
    origin: str  # where exactly it came from (file path or API call)
    package: str | None
    version: str | None
    license: str
    load: Callable[[], np.ndarray]  # -> RGB uint8 HxWx3
    fingerprint: Callable[[], str]
    subset: str = "natural"


@dataclass
class SourceResult:
    name: str
    candidates: list[Candidate]
    package: str | None = None
    version: str | None = None
    licenses: list[str] | None = None
    note: str | None = None  # a skipped source says why
    dropped: list[dict] | None = None  # files refused before decoding (SVG, symlink duplicates)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _as_rgb(img: np.ndarray, what: str) -> np.ndarray:
    if img.dtype != np.uint8:
        raise ValueError(f"{what} is {img.dtype}, not uint8")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _array_candidate(name: str, source: str, origin: str, package: str, version: str, lic: str,
                     get: Callable[[], np.ndarray]) -> Candidate:
    load = lambda: _as_rgb(get(), origin)  # noqa: E731
    return Candidate(name, source, origin, package, version, lic, load,
                     lambda: hashlib.sha256(load().tobytes()).hexdigest())


def folder_source(folder: Path, source: str, lic: str, package: str | None = None,
                  version: str | None = None, subset: str = "natural", prefix: str = "") -> SourceResult:
    files = list_images(folder) if Path(folder).is_dir() else []
    return SourceResult(source, [Candidate(f"{prefix}{p.stem}", source, str(p), package, version, lic,
                                           lambda p=p: read_rgb(p), lambda p=p: _file_sha(p), subset)
                                 for p in files], package, version, [lic],
                        None if files else f"{folder} has no images")


def t91_source(shared: Path = SHARED) -> SourceResult:
    return folder_source(shared / "datasets" / T91_FOLDER, "t91", T91_LICENSE, package=f"shared:{T91_FOLDER}")


def faces_source() -> SourceResult:
    try:
        faces = training_faces()
    except FileNotFoundError as exc:
        return SourceResult("faces", [], note=str(exc))
    return SourceResult("faces", [Candidate(p.stem, "faces", str(p), "shared:dev_faces", None, FACES_LICENSE,
                                            lambda p=p: read_rgb(p), lambda p=p: _file_sha(p), "faces")
                                  for p in faces], licenses=[FACES_LICENSE])


def skimage_source() -> SourceResult:
    import skimage
    import skimage.data

    held = set(HELD_OUT_SKIMAGE) | {"cat"}
    out = []
    for name in SKIMAGE_TRAIN:
        if name in held:
            raise ValueError(f"sources.SKIMAGE_TRAIN lists the held-out image {name!r}")
        get = (lambda: skimage.data.stereo_motorcycle()[0]) if name == "motorcycle_left" else getattr(skimage.data, name)
        out.append(_array_candidate(name, "skimage", f"skimage.data.{name}", "scikit-image",
                                    skimage.__version__, SKIMAGE_LICENSE, get))
    return SourceResult("skimage", out, "scikit-image", skimage.__version__, [SKIMAGE_LICENSE])


def sklearn_source() -> SourceResult:
    try:
        import sklearn
        from sklearn.datasets import load_sample_images
    except ImportError:
        return SourceResult("sklearn", [], note="scikit-learn is not installed; its two sample photos are skipped")
    data = load_sample_images()
    out = [_array_candidate(Path(f).stem, "sklearn", f"sklearn.datasets.load_sample_images:{Path(f).name}",
                            "scikit-learn", sklearn.__version__, SKLEARN_LICENSE, lambda im=im: im)
           for f, im in zip(data.filenames, data.images, strict=True)]
    return SourceResult("sklearn", out, "scikit-learn", sklearn.__version__, [SKLEARN_LICENSE])


# ---------------------------------------------------------------- Debian packages


def parse_copyright(text: str) -> list[tuple[list[str], str]]:
    """DEP-5 debian/copyright -> [(file globs, license short name)], in file order."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", block, re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)$", block, re.M)
        if files and lic:
            stanzas.append((files.group(1).split(), lic.group(1).strip()))
    return stanzas


def license_for(path: str, stanzas: list[tuple[list[str], str]]) -> str | None:
    """The last matching stanza wins (DEP-5); a glob matches the tail of the installed path."""
    found = None
    for globs, lic in stanzas:
        if any(g == "*" or fnmatch(path, g) or fnmatch(path, "*/" + g) for g in globs):
            found = lic
    return found


def fetch_deb(package: str, debs: Path) -> Path:
    """The package's .deb in `debs`, downloaded with `apt-get download` unless already there."""
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob(f"{package}_*.deb"))
    if have:
        return have[-1]
    try:
        res = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True,
                             timeout=APT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"apt-get download {package}: {exc}") from exc
    have = sorted(debs.glob(f"{package}_*.deb"))
    if res.returncode != 0 or not have:
        msg = " ".join(ln for ln in (res.stderr or res.stdout).splitlines() if ln.startswith("E:")) or res.stderr
        raise FetchError(f"apt-get download {package} failed (exit {res.returncode}): {msg.strip()[-300:]}")
    return have[-1]


def _deb_field(deb: Path, field: str) -> str:
    res = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True)
    return res.stdout.strip()


def debian_source(package: str, globs: tuple[str, ...], debs: Path, work: Path,
                  fetch: Callable[[str, Path], Path] = fetch_deb) -> SourceResult:
    """Fetch + unpack one package into work/<package>; raises FetchError when it cannot."""
    deb = fetch(package, debs)
    try:
        version = _deb_field(deb, "Version")
        root = work / package
        shutil.rmtree(root, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FetchError(f"cannot unpack {deb.name}: {exc}") from exc
    cp = root / "usr" / "share" / "doc" / package / "copyright"
    stanzas = parse_copyright(cp.read_text(errors="replace")) if cp.is_file() else []
    out, dropped, seen = [], [], set()
    for p in sorted(q for q in root.rglob("*") if q.is_file() or q.is_symlink()):
        rel = p.relative_to(root).as_posix()
        if not any(fnmatch(rel, g) for g in globs):
            continue
        origin = f"{package}:/{rel}"
        if p.suffix.lower() not in RASTER:
            if p.suffix.lower() == ".svg":
                dropped.append({"origin": origin, "reason": "not a photo (SVG)"})
            continue
        real = p.resolve()
        if real in seen or not real.is_file():  # KDE links every screen size to one file
            continue
        seen.add(real)
        real_rel = real.relative_to(root.resolve()).as_posix()
        lic = license_for(real_rel, stanzas) or license_for(rel, stanzas) or "unknown (not in debian/copyright)"
        upstream = _kde_license(real)
        if upstream and upstream != lic:
            lic = f"{lic} (debian/copyright); upstream metadata: {upstream}"
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", real_rel.split("/", 3)[-1].rsplit(".", 1)[0])
        out.append(Candidate(name, f"debian:{package}", origin, package, version, lic,
                             lambda p=real: read_rgb(p), lambda p=real: _file_sha(p)))
    licenses = sorted({lic for _, lic in stanzas}) or ["unknown (no DEP-5 debian/copyright)"]
    return SourceResult(f"debian:{package}", out, package, version, licenses,
                        None if out else "no file matches the photo globs", dropped)


def _kde_license(path: Path) -> str | None:
    """A KDE wallpaper's own license (WALLPAPER/metadata.json, next to contents/images/)."""
    for parent in path.parents[:4]:
        meta = parent / "metadata.json"
        if meta.is_file():
            try:
                return json.loads(meta.read_text()).get("KPlugin", {}).get("License")
            except (ValueError, OSError):
                return None
    return None
