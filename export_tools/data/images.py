"""The image sets the recipes train and evaluate on. Every image used is listed; none is committed.

train:     ../shared/datasets/train_natural (53 T91 photos)
held-out:  scikit-image's bundled colour photos (never used in training)
faces:     ../shared/datasets/dev_faces (14 real faces), split ONCE here: sorted by name, odd index ->
           training faces (the face fine-tune), even index + scikit-image's astronaut -> held-out faces
           (evaluation and the night benchmark; never trained on)
lowlight:  ../shared/datasets/dev_lowlight (6 real night photos, no reference; visual checks only)
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(os.environ.get("NIGHTWATCH_SHARED", Path(__file__).resolve().parents[3] / "shared"))
HELD_OUT_SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket")


class DatasetMissing(FileNotFoundError):
    pass


def _folder(name: str) -> Path:
    path = SHARED / "datasets" / name
    if not path.is_dir():
        raise DatasetMissing(f"dataset folder {path} not found (set NIGHTWATCH_SHARED to the shared folder)")
    return path


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"})


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3; raises ValueError naming the file when it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(img[:, :, ::-1])


def train_paths() -> list[Path]:
    return list_images(_folder("train_natural"))


def face_paths() -> list[Path]:
    return list_images(_folder("dev_faces"))


def training_faces() -> list[Path]:
    """The dev faces we may train on: odd positions of the name-sorted list."""
    return face_paths()[1::2]


def held_out_faces() -> list[Path]:
    """The dev faces never trained on (plus scikit-image's astronaut, see held_out_face_images)."""
    return face_paths()[0::2]


def held_out_face_images() -> dict[str, np.ndarray]:
    """name -> RGB uint8: the held-out dev faces and scikit-image's astronaut."""
    import skimage.data

    out = {f"face/{p.stem}": read_rgb(p) for p in held_out_faces()}
    out["face/astronaut"] = np.ascontiguousarray(skimage.data.astronaut()[:, :, :3])
    return out


def lowlight_paths() -> list[Path]:
    return list_images(_folder("dev_lowlight"))


def held_out_images() -> dict[str, np.ndarray]:
    """name -> RGB uint8, scikit-image's colour photos (bundled with its wheel, held out of training)."""
    import skimage.data

    out = {}
    for name in HELD_OUT_SKIMAGE:
        img = getattr(skimage.data, name)()
        if img.ndim == 3 and img.shape[2] >= 3:
            out[name] = np.ascontiguousarray(img[:, :, :3])
    return out
