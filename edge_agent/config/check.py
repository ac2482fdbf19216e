"""Validate a base config together with an overlay: what the agent would run on.

    python -m edge_agent.config.check BASE [--overlay FILE]

The deployment runs this on the base it is about to put in place, with the box's overlay
(``--overlay``; by default the overlay beside BASE, see overlay.overlay_path_for), so a new base
that the box's on-box changes would make invalid fails the deploy before it replaces the running
config. On success it prints what the overlay overrides (the deploy shows it), so keys changed on
the box do not silently shadow the inventory. Exit 0 valid, 2 refused (every problem printed with
its file, key and line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.config.layers import load_layers
from edge_agent.config.loader import ConfigError


def report(base: Path, overlay: Path | None = None) -> tuple[int, list[str]]:
    """(exit code, lines to print)."""
    try:
        layers = load_layers(base, overlay, warn=False)
    except ConfigError as exc:
        return 2, [str(exc)]
    cfg = layers.config
    lines = [f"{base}: valid ({len(cfg.cameras)} camera(s), site {cfg.site})"]
    keys = layers.overlay_keys
    if keys:
        lines.append(
            f"{layers.overlay_path}: on-box changes override {len(keys)} key(s) of the base: {', '.join(keys)}"
        )
    else:
        lines.append(f"{layers.overlay_path}: no on-box changes")
    for name in layers.ignored_cameras:
        lines.append(
            f"{layers.overlay_path}: camera {name!r} is not in the base: its on-box changes are ignored "
            "(reset the overlay to drop them)"
        )
    return 0, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge_agent.config.check", description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path, help="the base config file")
    p.add_argument("--overlay", type=Path, default=None, help="the box's overlay (default: beside the base)")
    args = p.parse_args(argv)
    code, lines = report(args.config, args.overlay)
    print("\n".join(lines), file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
