"""`edge-export data build`: assemble the shared training set into an ignored folder, with a manifest.

Sources (export_tools.data.sources), in this order: T91, scikit-image's photos (never the held-out ones),
scikit-learn's sample photos, the training faces, then photos from Debian wallpaper packages
(apt-get download into OUT/.debs, reused on the next run, + dpkg -x). Every image is
- dropped when its short side is < MIN_SIDE, or when it does not look like a photograph (is_photo);
- dropped when it repeats an earlier one (sha256 of the pixels, or a 64-bit difference hash within
  HASH_DISTANCE bits) or matches a held-out evaluation image;
- stored as PNG, downscaled to <= max_side on its long side, and listed in OUT/manifest.json (path,
  source, package + version, license, sha256 of the stored file, width, height, subset).
A source that cannot be fetched is reported by name (a warning and the manifest's "failed" list); the
rest is still built. OUT/.cache.json remembers each source file's verdict and hashes, so a re-run only
decodes what changed. Others read the set with `training_images(root, subset)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from export_tools.data import sources as src
from export_tools.data.images import SHARED, DatasetMissing, held_out_face_images, held_out_images

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("work_cache/train_set")
MIN_SIDE = 128
MAX_SIDE = 1024
SUBSETS = ("natural", "faces")
HASH_DISTANCE = 4  # dhash bits: resized / recompressed copies of one photo differ by 0-2
# is_photo thresholds, measured at 512 px on T91, scikit-image, the dev faces and the wallpaper packages:
# every photo has >= 0.22 of its pixels with a grey Laplacian above 2 levels and >= 7000 colours (grey
# photos >= 145 grey levels); flat renders, gradients and logos fall below one of them
MIN_TEXTURE = 0.15
MIN_COLOURS = 3000
MIN_GREY_LEVELS = 128
GREY_SATURATION = 1.0  # mean |channel - grey| below this: a grey image (count grey levels, not colours)
CACHE_VERSION = 1
MANIFEST_VERSION = 1


class TrainingSetMissing(FileNotFoundError):
    pass


# ---------------------------------------------------------------- filters


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of the grey image (robust to resizing and recompression)."""
    g = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def photo_score(rgb: np.ndarray) -> tuple[float, int, bool]:
    """(texture, colours, grey) on a <= 512 px version: texture = fraction of pixels whose grey Laplacian
    exceeds 2 levels; colours = distinct RGB values (distinct grey levels when the image is grey)."""
    h, w = rgb.shape[:2]
    f = 512.0 / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else rgb
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    texture = float(np.mean(np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)) > 2.0))
    is_grey = float(np.abs(small.astype(np.int16) - grey[:, :, None]).mean()) < GREY_SATURATION
    if is_grey:
        colours = int(np.unique(grey).size)
    else:
        colours = int(np.unique(small.reshape(-1, 3).astype(np.int64) @ np.array([65536, 256, 1])).size)
    return texture, colours, is_grey


def is_photo(rgb: np.ndarray) -> tuple[bool, str]:
    """(ok, why not): flat images, smooth gradients and few-colour art are not photographs."""
    texture, colours, grey = photo_score(rgb)
    need = MIN_GREY_LEVELS if grey else MIN_COLOURS
    if texture < MIN_TEXTURE:
        return False, f"not a photo: flat (texture {texture:.3f} < {MIN_TEXTURE})"
    if colours < need:
        return False, f"not a photo: {colours} {'grey levels' if grey else 'colours'} < {need}"
    return True, ""


def downscale(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    f = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _held_out_hashes() -> dict[int, str]:
    imgs = dict(held_out_images())
    try:
        imgs.update(held_out_face_images())
    except DatasetMissing:
        pass
    return {dhash(np.ascontiguousarray(im)): name for name, im in imgs.items()}


# ---------------------------------------------------------------- build


def _source_jobs(shared: Path, packages: dict[str, tuple[str, ...]], debs: Path, work: Path,
                 fetch: Callable[[str, Path], Path], extra: list[src.SourceResult]
                 ) -> list[tuple[str, str | None, Callable[[], src.SourceResult]]]:
    jobs: list[tuple[str, str | None, Callable[[], src.SourceResult]]] = [
        ("t91", None, lambda: src.t91_source(shared)), ("skimage", None, src.skimage_source),
        ("sklearn", None, src.sklearn_source), ("faces", None, src.faces_source)]
    for pkg, globs in packages.items():
        jobs.append((f"debian:{pkg}", pkg, lambda p=pkg, g=globs: src.debian_source(p, g, debs, work, fetch)))
    jobs += [(r.name, r.package, lambda r=r: r) for r in extra]
    return jobs


def _analyse(c: src.Candidate, fp: str) -> dict:
    img = c.load()
    h, w = img.shape[:2]
    rec = {"fp": fp, "pixel_sha256": hashlib.sha256(img.tobytes()).hexdigest(), "phash": f"{dhash(img):016x}",
           "reason": None, "source_size": [w, h]}
    if min(h, w) < MIN_SIDE:
        rec["reason"] = f"tiny ({w}x{h}, short side < {MIN_SIDE})"
    else:
        ok, why = is_photo(img)
        rec["reason"] = None if ok else why
    return rec


def _store(c: src.Candidate, rel: str, out: Path, max_side: int) -> tuple[str, int, int]:
    img = downscale(c.load(), max_side)
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))
    if not ok:
        raise OSError(f"cannot encode {rel}")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)
    return hashlib.sha256(buf.tobytes()).hexdigest(), img.shape[1], img.shape[0]


def _file_sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def build(out: Path = DEFAULT_OUT, packages: dict[str, tuple[str, ...]] | None = None, debian: bool = True,
          max_side: int = MAX_SIDE, shared: Path = SHARED, extra: list[src.SourceResult] | None = None,
          fetch: Callable[[str, Path], Path] = src.fetch_deb, progress: bool = True) -> dict:
    """Build (or refresh) the set in `out`; returns the manifest (also written to out/manifest.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    packages = {} if not debian else (src.DEBIAN_PACKAGES if packages is None else packages)
    cache_path = out / ".cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    settings = [CACHE_VERSION, MIN_SIDE, MIN_TEXTURE, MIN_COLOURS, MIN_GREY_LEVELS]
    if cache.get("settings") != settings:
        cache = {}
    records: dict = cache.get("records", {})
    new_records: dict = {}
    held = _held_out_hashes()
    images: list[dict] = []
    dropped: list[dict] = []
    failed: list[dict] = []
    summary: dict[str, dict] = {}
    seen_sha: dict[str, str] = {}
    seen_hash: list[tuple[int, str]] = []
    with tempfile.TemporaryDirectory(prefix="data_build_") as tmp:
        jobs = _source_jobs(Path(shared), packages, out / ".debs", Path(tmp), fetch, list(extra or []))
        bar = tqdm(jobs, desc="sources", unit="src", disable=not progress)
        for name, pkg, job in bar:
            bar.set_postfix_str(name)
            try:
                res = job()
            except (src.FetchError, OSError, ValueError, subprocess.SubprocessError) as exc:
                log.warning("data build: source %s failed: %s", name, exc)
                failed.append({"source": name, "package": pkg, "error": str(exc)})
                summary[name] = {"package": pkg, "version": None, "licenses": None, "offered": 0, "images": 0,
                                 "note": "failed"}
                continue
            if res.note:
                log.warning("data build: %s: %s", name, res.note)
            kept = 0
            dropped += [dict(d, source=name) for d in res.dropped or []]
            for c in tqdm(res.candidates, desc=name, unit="img", leave=False, disable=not progress):
                try:
                    fp = c.fingerprint()
                    rec = records.get(c.origin)
                    if rec is None or rec.get("fp") != fp:
                        rec = _analyse(c, fp)
                    new_records[c.origin] = rec
                    reason = rec["reason"]
                    h = int(rec["phash"], 16)
                    if reason is None:
                        near = [n for o, n in held.items() if _hamming(o, h) <= HASH_DISTANCE]
                        if near:
                            reason = f"held out ({near[0]})"
                    if reason is None and rec["pixel_sha256"] in seen_sha:
                        reason = f"duplicate of {seen_sha[rec['pixel_sha256']]} (sha256)"
                    if reason is None:
                        near = [o for x, o in seen_hash if _hamming(x, h) <= HASH_DISTANCE]
                        if near:
                            reason = f"duplicate of {near[0]} (dhash)"
                    if reason is not None:
                        dropped.append({"source": name, "origin": c.origin, "reason": reason})
                        continue
                    seen_sha[rec["pixel_sha256"]] = c.origin
                    seen_hash.append((h, c.origin))
                    rel = f"images/{c.subset}/{c.source.replace(':', '-')}/{c.name}.png"
                    stored = rec.get("stored") or {}
                    file_sha = _file_sha(out / rel)
                    if stored.get("path") != rel or stored.get("max_side") != max_side or stored.get("sha256") != file_sha:
                        sha, w, hgt = _store(c, rel, out, max_side)
                        stored = {"path": rel, "max_side": max_side, "sha256": sha, "width": w, "height": hgt}
                        rec["stored"] = stored
                except (ValueError, OSError, cv2.error) as exc:
                    dropped.append({"source": name, "origin": c.origin, "reason": f"unreadable: {exc}"})
                    continue
                images.append({"path": rel, "source": name, "origin": c.origin, "package": c.package,
                               "version": c.version, "license": c.license, "sha256": stored["sha256"],
                               "width": stored["width"], "height": stored["height"], "subset": c.subset,
                               "source_size": rec["source_size"], "phash": rec["phash"]})
                kept += 1
            summary[name] = {"package": res.package, "version": res.version, "licenses": res.licenses,
                             "offered": len(res.candidates), "images": kept, "note": res.note}
    listed = {e["path"] for e in images}
    for p in (out / "images").rglob("*") if (out / "images").is_dir() else []:
        if p.is_file() and p.relative_to(out).as_posix() not in listed:
            p.unlink()  # left over from an earlier build (source removed, max_side changed)
    manifest = {"version": MANIFEST_VERSION, "min_side": MIN_SIDE, "max_side": max_side,
                "total_bytes": sum((out / e["path"]).stat().st_size for e in images),
                "sources": summary, "failed": failed, "images": images, "dropped": dropped}
    _write_json(out / "manifest.json", manifest)
    _write_json(cache_path, {"settings": settings, "records": new_records})
    return manifest


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def training_images(root: Path = DEFAULT_OUT, subset: str = "natural") -> list[Path]:
    """Paths of the built set's images of one subset ("natural" or "faces")."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; use one of {', '.join(SUBSETS)}")
    mf = Path(root) / "manifest.json"
    if not mf.is_file():
        raise TrainingSetMissing(f"training set not found at {root} (no manifest.json); "
                                 f"run `edge-export data build` first")
    data = json.loads(mf.read_text())
    paths = [Path(root) / e["path"] for e in data["images"] if e["subset"] == subset]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise TrainingSetMissing(f"{len(missing)} files listed in {mf} are missing (e.g. {missing[0]}); "
                                 f"run `edge-export data build` again")
    return paths


def report(manifest: dict) -> str:
    """A few lines for the terminal: images per source, failures, size."""
    lines = [f"{name}: {s['images']} of {s['offered']} images" + (f" ({s['note']})" if s["note"] else "")
             for name, s in manifest["sources"].items()]
    lines += [f"FAILED {f['source']}: {f['error']}" for f in manifest["failed"]]
    lines.append(f"total: {len(manifest['images'])} images, {manifest['total_bytes'] / 1e6:.1f} MB, "
                 f"{len(manifest['dropped'])} dropped")
    return "\n".join(lines)
