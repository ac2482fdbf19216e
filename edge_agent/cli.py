"""`edge-agent` command line. Each subcommand imports its module lazily so that a light command
(check-config) never pays for the inference runtimes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _ratio_arg(text: str) -> float | str:
    """--ratio: "auto" or a number (its range is checked with the config's own rule)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor auto") from None


def _cmd_check_config(args: argparse.Namespace) -> int:
    from edge_agent.config.loader import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.config}: valid ({len(cfg.cameras)} camera(s), site {cfg.site})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.run import run_agent

    return run_agent(args.config)


def _cmd_demo(args: argparse.Namespace) -> int:
    from edge_agent.demo import run_demo

    return run_demo(out_dir=args.out, seconds=args.seconds)


def _cmd_enhance(args: argparse.Namespace) -> int:
    from edge_agent.enhance.cli import run_enhance

    return run_enhance(args)


def _cmd_hash_password(args: argparse.Namespace) -> int:
    from edge_agent.api.auth import hash_password_cli

    return hash_password_cli(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-agent", description="Night-time CCTV enhancement at the edge.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    s.add_argument("--config", required=True, type=Path, help="YAML config file")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("demo", help="run the whole pipeline on a built-in night clip")
    s.add_argument("--out", type=Path, default=Path("demo_output"), help="where events are written")
    s.add_argument("--seconds", type=float, default=None, help="stop after this long (default: clip end)")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("enhance", help="enhance image files with the shipped models")
    mode = s.add_mutually_exclusive_group(required=True)
    mode.add_argument("--low-light", dest="mode", action="store_const", const="low_light")
    mode.add_argument("--super-resolve", dest="mode", action="store_const", const="super_resolve")
    mode.add_argument("--faces", dest="mode", action="store_const", const="faces")
    s.add_argument("images", nargs="+", type=Path, help="input image files")
    s.add_argument("--out", required=True, type=Path, help="output folder (same-named PNGs)")
    s.add_argument("--ratio", type=_ratio_arg, default="auto",
                   help="low-light brightness ratio 1..50, or auto (brings each enhanced image to mean luma 110; the default)")
    s.add_argument("--models", type=Path, default=None, help="models folder (default: the shipped one)")
    s.add_argument("--backend", choices=["auto", "onnxruntime", "openvino"], default="auto")
    s.add_argument("--precision", choices=["int8", "fp32"], default="int8")
    s.set_defaults(func=_cmd_enhance)

    from edge_agent.control_room.cli import add_commands

    add_commands(sub)  # receive, verify-evidence

    s = sub.add_parser("check-config", help="validate a config file and exit")
    s.add_argument("config", type=Path)
    s.set_defaults(func=_cmd_check_config)

    s = sub.add_parser("hash-password", help="print a password hash for api.auth.password_hash")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=_cmd_hash_password)
    return p


def main(argv: list[str] | None = None) -> int:
    from edge_agent.malloc_tuning import tune_malloc

    tune_malloc()  # before any thread starts (edge_agent/malloc_tuning.py)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
