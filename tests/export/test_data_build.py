"""`edge-export data build`: the training-set builder on the real T91 + scikit-image (+ scikit-learn,
training faces) sources, with a fake folder of duplicates / tiny / flat / held-out images and a Debian
package that does not exist."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import skimage.data

from export_tools.cli import main
from export_tools.data import build as b
from export_tools.data import sources as src
from export_tools.data.images import HELD_OUT_SKIMAGE, SHARED, held_out_faces, training_faces

pytestmark = [pytest.mark.needs_shared,
              pytest.mark.skipif(not (SHARED / "datasets" / "train_natural").is_dir(), reason="no shared T91")]
BAD_PKG = "nonexistent-wallpapers-xyz-0000"


def _failing_fetch(package, debs):
    raise src.FetchError(f"apt-get download {package} failed: E: Unable to locate package {package}")


FETCH = src.fetch_deb if shutil.which("apt-get") else _failing_fetch


def _write(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake_source")
    t91 = sorted((SHARED / "datasets" / "train_natural").glob("*.png"))
    shutil.copy(t91[0], d / "exact_copy.png")
    img = cv2.imread(str(t91[1]))
    cv2.imwrite(str(d / "resized_copy.png"), cv2.resize(img, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    _write(d / "tiny.png", rng.integers(0, 256, (100, 140, 3), dtype=np.uint8))
    x = np.linspace(0, 255, 400, dtype=np.float32)
    grad = np.stack([np.tile(x, (300, 1)), np.tile(x[:300, None], (1, 400)), np.full((300, 400), 90.0)], 2)
    _write(d / "gradient.png", grad.astype(np.uint8))
    palette = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 240]], np.uint8)
    _write(d / "four_colours.png", palette[rng.integers(0, 4, (300, 400))])
    _write(d / "astronaut.png", skimage.data.astronaut()[:, :, :3])
    shutil.copy(held_out_faces()[0], d / "held_face.png")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory, fake_dir):
    out = tmp_path_factory.mktemp("train_set")
    extra = [src.folder_source(fake_dir, "dir:fake", "test images")]
    manifest = b.build(out, packages={BAD_PKG: ("usr/share/*",)}, extra=extra, fetch=FETCH, progress=False)
    return out, manifest, extra


def _reason(manifest, name):
    found = [d["reason"] for d in manifest["dropped"] if d.get("origin", "").endswith(name)]
    assert found, f"{name} not dropped"
    return found[0]


def test_manifest_lists_every_file_with_its_source_license_and_hash(built):
    out, m, _ = built
    assert json.loads((out / "manifest.json").read_text()) == m
    counts = {k: v["images"] for k, v in m["sources"].items()}
    assert counts["t91"] == 52 and counts["skimage"] == len(src.SKIMAGE_TRAIN)
    assert counts["faces"] == len(training_faces())
    for e in m["images"]:
        assert {"path", "source", "package", "version", "license", "sha256", "width", "height"} <= e.keys()
        data = (out / e["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        img = cv2.imread(str(out / e["path"]))
        assert img.shape[:2] == (e["height"], e["width"])
        assert max(img.shape[:2]) <= b.MAX_SIDE and min(img.shape[:2]) >= b.MIN_SIDE
        assert e["license"]
    sk = [e for e in m["images"] if e["source"] == "skimage"]
    assert {e["package"] for e in sk} == {"scikit-image"} and all(e["version"] for e in sk)
    assert sum((out / e["path"]).stat().st_size for e in m["images"]) == m["total_bytes"]
    retina = next(e for e in sk if e["origin"].endswith("retina"))
    assert max(retina["width"], retina["height"]) == b.MAX_SIDE  # 1411 px source, downscaled


def test_held_out_images_never_enter_the_set(built):
    _, m, _ = built
    origins = " ".join(e["origin"] for e in m["images"])
    for name in HELD_OUT_SKIMAGE:
        assert f"skimage.data.{name}" not in origins
    for p in held_out_faces():
        assert str(p) not in origins
    assert {e["origin"] for e in m["images"] if e["subset"] == "faces"} == {str(p) for p in training_faces()}
    assert _reason(m, "astronaut.png").startswith("held out")
    assert _reason(m, "held_face.png").startswith("held out")


def test_duplicates_tiny_and_flat_images_are_dropped(built):
    _, m, _ = built
    assert "sha256" in _reason(m, "exact_copy.png")
    assert "dhash" in _reason(m, "resized_copy.png")
    assert _reason(m, "tiny.png").startswith("tiny")
    assert "flat" in _reason(m, "gradient.png")
    assert "colours" in _reason(m, "four_colours.png")
    assert m["sources"]["dir:fake"]["images"] == 0
    assert len({e["sha256"] for e in m["images"]}) == len(m["images"])


def test_a_package_that_cannot_be_fetched_is_reported_by_name(built, tmp_path, caplog):
    _, m, _ = built
    assert [f["package"] for f in m["failed"]] == [BAD_PKG]
    assert BAD_PKG in m["failed"][0]["error"]
    assert len(m["images"]) > 60  # the rest was built
    with caplog.at_level(logging.WARNING):
        m2 = b.build(tmp_path, packages={"also-missing": ("*",)}, fetch=_failing_fetch, progress=False)
    assert "also-missing" in caplog.text and m2["failed"][0]["source"] == "debian:also-missing"
    assert m2["images"]


def test_rerun_is_idempotent_and_decodes_nothing(built, monkeypatch):
    out, m, extra = built
    mtimes = {e["path"]: (out / e["path"]).stat().st_mtime_ns for e in m["images"]}

    def no_decode(*a, **k):
        raise AssertionError("re-run decoded a source image again")

    monkeypatch.setattr(b, "_analyse", no_decode)
    monkeypatch.setattr(b, "_store", no_decode)
    again = b.build(out, packages={BAD_PKG: ("usr/share/*",)}, extra=extra, fetch=FETCH, progress=False)
    assert again["images"] == m["images"] and again["dropped"] == m["dropped"]
    assert {p: (out / p).stat().st_mtime_ns for p in mtimes} == mtimes


def test_cli_no_debian_max_side_and_nothing_built(tmp_path, monkeypatch, capsys):
    assert main(["data", "build", "--out", str(tmp_path / "s"), "--no-debian", "--max-side", "200"]) == 0
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["max_side"] == 200 and all(max(e["width"], e["height"]) <= 200 for e in m["images"])
    assert not any(k.startswith("debian:") for k in m["sources"])
    assert "t91: 52 of 53 images" in capsys.readouterr().out

    def only_failure(*a, **k):
        return [("debian:gone", "gone", lambda: _failing_fetch("gone", None))]

    monkeypatch.setattr(b, "_source_jobs", only_failure)
    assert main(["data", "build", "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr()
    assert "FAILED debian:gone" in err.out and "no image could be built" in err.err


def test_debian_source_reads_license_version_and_skips_links_and_svg(tmp_path):
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb not installed")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: fake-walls\nVersion: 1:2.0-1\nArchitecture: all\n"
                                            "Maintainer: t <t@example.org>\nDescription: test\n")
    walls = pkg / "usr/share/backgrounds/fake"
    walls.mkdir(parents=True)
    shutil.copy(sorted((SHARED / "datasets" / "train_natural").glob("*.png"))[0], walls / "photo.png")
    (walls / "photo-alias.png").symlink_to("photo.png")
    (walls / "logo.svg").write_text("<svg/>")
    doc = pkg / "usr/share/doc/fake-walls"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                                   "Files: *\nCopyright: x\nLicense: GPL-2+\n\n"
                                   "Files: fake/photo.png\nCopyright: y\nLicense: CC-BY-4.0\n")
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(tmp_path / "fake-walls_2.0-1_all.deb")],
                   check=True, capture_output=True)
    res = src.debian_source("fake-walls", ("usr/share/backgrounds/*",), tmp_path, tmp_path / "work",
                            fetch=lambda p, d: tmp_path / "fake-walls_2.0-1_all.deb")
    assert res.version == "1:2.0-1" and res.licenses == ["CC-BY-4.0", "GPL-2+"]
    assert [c.license for c in res.candidates] == ["CC-BY-4.0"]  # the link to the same file counted once
    assert res.candidates[0].load().shape[2] == 3
    assert res.dropped == [{"origin": "fake-walls:/usr/share/backgrounds/fake/logo.svg",
                            "reason": "not a photo (SVG)"}]
