"""`edge-agent enhance`: run the enhancement stages on image files.

    edge-agent enhance --low-light IMG... --out DIR [--ratio R]
    edge-agent enhance --super-resolve IMG... --out DIR
    edge-agent enhance --faces IMG... --out DIR

Outputs are PNGs named after the inputs (DIR/<stem>.png; faces: DIR/<stem>_face<N>.png, the
super-resolved crops). --faces also writes DIR/faces.json: for each input file name, its faces as
{"box": [x, y, w, h], "score": s, "frame": "original"|"enhanced"} in the input's pixels ([] for
none), found as the agent finds them (FacesConfig defaults: the CNN detector on the whole image,
on the original unless faces.detect_on says otherwise; dark images are low-light enhanced and
the crops cut from the enhanced image, as in the agent).
Inputs over the pixel limit of their mode (MAX_PIXELS; --super-resolve: the face-SR limit) are
refused by name from the image header, before decoding.
A missing, unreadable or too large input is reported by name on stderr and the others are still
processed; the exit code is 1 if any input failed, 2 if a model could not be loaded, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config.schema import FacesConfig, HealthConfig, LowLightConfig, ModelsConfig
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import default_models_dir, load_model

# the agent's defaults: tiles for large images, gray (IR) images stay gray
_LOW_LIGHT_KW = {"max_pixels": LowLightConfig().max_pixels,
                 "gray_saturation": HealthConfig().ir_gray_saturation}

# --low-light and --faces: a 4K camera frame (3840x2160) at most; --super-resolve has its own limit
MAX_PIXELS = 3840 * 2160


def mode_limit(mode: str) -> int:
    from edge_agent.enhance.face_sr import MAX_INPUT_PIXELS

    return MAX_INPUT_PIXELS if mode == "super_resolve" else MAX_PIXELS


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding the pixels; None if unknown."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with scikit-image; without it the decoded size is checked
        return None
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Image.DecompressionBombError as exc:  # Pillow's own refusal: far over any limit of ours
        raise ValueError(f"{path}: image is too large ({exc})") from exc
    except Exception:  # not a format Pillow knows (or not an image): OpenCV decides
        return None


def _check_pixels(path: Path, width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ValueError(f"{path}: image of {width}x{height} is too large ({width * height} pixels; "
                         f"the limit is {limit} pixels)")


def read_image(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as BGR uint8 HxWx3; ValueError naming the file when it cannot be read
    or, with max_pixels, when it holds more pixels (checked on the header first)."""
    if max_pixels is not None:
        size = header_size(path)
        if size is not None:
            _check_pixels(path, size[0], size[1], max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if max_pixels is not None:
        _check_pixels(path, image.shape[1], image.shape[0], max_pixels)
    return image


def write_png(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    tmp = path.with_name(path.name + ".tmp")
    buf.tofile(tmp)
    tmp.replace(path)


class _Stages:
    """The models a mode needs, loaded once."""

    def __init__(self, args: argparse.Namespace) -> None:
        models_dir = args.models or default_models_dir()
        names = ModelsConfig()
        kw = dict(backend=args.backend, precision=args.precision)
        self.low_light = None
        self.sr = None
        self.detector = None
        if args.mode in ("low_light", "faces"):
            from edge_agent.enhance.low_light import LowLightEnhancer

            self.low_light = LowLightEnhancer(load_model(models_dir, names.low_light, **kw))
        if args.mode in ("super_resolve", "faces"):
            from edge_agent.enhance.face_sr import FaceSuperResolver

            self.sr = FaceSuperResolver(load_model(models_dir, names.face_sr, **kw))
        if args.mode == "faces":
            from edge_agent.enhance.faces import FaceDetector

            backend = "onnxruntime" if args.backend == "auto" else args.backend  # as the agent does
            self.detector = FaceDetector(FacesConfig(), models_dir=models_dir, backend=backend)
            if self.detector.fallback_error:
                print(f"warning: {self.detector.fallback_error}; using the LBP cascade", file=sys.stderr)


def _process(stages: _Stages, args: argparse.Namespace, src: Path, out_dir: Path) -> tuple[str, list | None]:
    image = read_image(src, mode_limit(args.mode))
    if args.mode == "low_light":
        write_png(out_dir / f"{src.stem}.png", stages.low_light.enhance(image, args.ratio, **_LOW_LIGHT_KW))
        return f"enhanced {image.shape[1]}x{image.shape[0]}", None
    if args.mode == "super_resolve":
        up = stages.sr.upscale(image)
        write_png(out_dir / f"{src.stem}.png", up)
        return f"{image.shape[1]}x{image.shape[0]} -> {up.shape[1]}x{up.shape[0]}", None
    # faces: the agent's detection (detect_faces); dark images are low-light enhanced for the crops
    from edge_agent.enhance.faces import crop_with_margin, detect_faces
    from edge_agent.enhance.low_light import is_dark

    ll = LowLightConfig()
    dark = is_dark(image, ll.luma_threshold)
    enhanced = stages.low_light.enhance(image, args.ratio, **_LOW_LIGHT_KW) if dark else None
    cfg = stages.detector.cfg
    found = detect_faces(stages.detector, cfg, image, enhanced)
    base = enhanced if enhanced is not None else image
    records = []
    for n, (box, frame) in enumerate(found, start=1):
        crop, _ = crop_with_margin(base, box, cfg.margin)
        write_png(out_dir / f"{src.stem}_face{n}.png", stages.sr.upscale(crop))
        records.append({"box": [int(v) for v in box[:4]], "score": round(float(box[4]), 4), "frame": frame})
    return f"{len(found)} face(s){' (dark: low-light enhanced first)' if dark else ''}", records


def write_faces_json(path: Path, faces: dict[str, list]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(faces, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_enhance(args: argparse.Namespace) -> int:
    try:
        LowLightConfig(ratio=args.ratio)
    except ValueError as exc:
        print(f"error: --ratio {args.ratio}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: output folder {out_dir} cannot be created: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        stages = _Stages(args)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed: list[Path] = []
    seen: dict[str, Path] = {}
    faces: dict[str, list] = {}
    total = len(args.images)
    for i, src in enumerate(args.images, start=1):
        src = Path(src)
        prefix = f"[{i}/{total}] {src}"
        if src.stem in seen:
            print(f"{prefix}: FAILED: its output name clashes with {seen[src.stem]}", file=sys.stderr)
            failed.append(src)
            continue
        seen[src.stem] = src
        t0 = time.perf_counter()
        try:
            what, records = _process(stages, args, src, out_dir)
        except (ValueError, ModelError, OSError) as exc:
            print(f"{prefix}: FAILED: {exc}", file=sys.stderr)
            failed.append(src)
            continue
        if records is not None:
            faces[src.name] = records
        print(f"{prefix}: {what} ({(time.perf_counter() - t0) * 1000:.0f} ms)", flush=True)
    if args.mode == "faces":
        write_faces_json(out_dir / "faces.json", faces)
        print(f"faces: {out_dir / 'faces.json'}")
    done = total - len(failed)
    print(f"{done} of {total} image(s) written to {out_dir}" + (f"; {len(failed)} failed" if failed else ""))
    if failed:
        print("failed: " + ", ".join(str(p) for p in failed), file=sys.stderr)
    return 1 if failed else 0
