"""`edge-agent enhance`: run the enhancement stages on image files.

    edge-agent enhance --low-light IMG... --out DIR [--ratio R]
    edge-agent enhance --super-resolve IMG... --out DIR
    edge-agent enhance --faces IMG... --out DIR

Outputs are PNGs named after the inputs (DIR/<stem>.png; faces: DIR/<stem>_face<N>.png).
A missing or unreadable input is reported by name on stderr and the others are still processed;
the exit code is 1 if any input failed, 2 if a model could not be loaded, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config.schema import FacesConfig, LowLightConfig, ModelsConfig
from edge_agent.inference.base import ModelError
from edge_agent.inference.loader import default_models_dir, load_model


def read_image(path: Path) -> np.ndarray:
    """Read an image file as BGR uint8 HxWx3; ValueError naming the file when it cannot be read."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image")
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

            self.detector = FaceDetector(FacesConfig())


def _process(stages: _Stages, args: argparse.Namespace, src: Path, out_dir: Path) -> str:
    image = read_image(src)
    if args.mode == "low_light":
        write_png(out_dir / f"{src.stem}.png", stages.low_light.enhance(image, args.ratio))
        return f"enhanced {image.shape[1]}x{image.shape[0]}"
    if args.mode == "super_resolve":
        up = stages.sr.upscale(image)
        write_png(out_dir / f"{src.stem}.png", up)
        return f"{image.shape[1]}x{image.shape[0]} -> {up.shape[1]}x{up.shape[0]}"
    # faces: detect on the low-light-enhanced frame when the image is dark
    from edge_agent.enhance.faces import crop_with_margin
    from edge_agent.enhance.low_light import is_dark

    ll = LowLightConfig()
    dark = is_dark(image, ll.luma_threshold)
    frame = stages.low_light.enhance(image, args.ratio) if dark else image
    boxes = stages.detector.detect(frame)
    for n, box in enumerate(boxes, start=1):
        crop, _ = crop_with_margin(frame, box, stages.detector.cfg.margin)
        write_png(out_dir / f"{src.stem}_face{n}.png", stages.sr.upscale(crop))
    return f"{len(boxes)} face(s){' (dark: low-light enhanced first)' if dark else ''}"


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
            what = _process(stages, args, src, out_dir)
        except (ValueError, ModelError, OSError) as exc:
            print(f"{prefix}: FAILED: {exc}", file=sys.stderr)
            failed.append(src)
            continue
        print(f"{prefix}: {what} ({(time.perf_counter() - t0) * 1000:.0f} ms)", flush=True)
    done = total - len(failed)
    print(f"{done} of {total} image(s) written to {out_dir}" + (f"; {len(failed)} failed" if failed else ""))
    if failed:
        print("failed: " + ", ".join(str(p) for p in failed), file=sys.stderr)
    return 1 if failed else 0
