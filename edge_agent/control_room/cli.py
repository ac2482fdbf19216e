"""`nightwatch-control-room`: the control room's own command (the receiver and its console,
evidence verification, operator password hashes). `edge-agent receive` and
`edge-agent verify-evidence` are the same commands under the box's name."""

from __future__ import annotations

import argparse
from pathlib import Path


def _receive(args: argparse.Namespace) -> int:
    from edge_agent.control_room.ingest import run_receiver

    return run_receiver(args)


def _check(args: argparse.Namespace) -> int:
    """Validate a receiver config (and read its site keys) without connecting to anything."""
    from edge_agent.control_room.ingest import load_checked

    loaded = load_checked(args.config)
    if loaded is None:
        return 2
    cfg, keys = loaded
    st = cfg.storage
    group = f", share group {cfg.mqtt.share_group}" if cfg.mqtt.share_group else ""
    console = f"on port {cfg.console.port}" if cfg.console.enabled else "off"
    print(f"{args.config}: ok (broker {cfg.mqtt.host}:{cfg.mqtt.port}{group}; index {st.index}, files {st.files};"
          f" {len(keys)} site key(s); console {console})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from edge_agent.control_room.evidence import verify_cli

    return verify_cli(args)


def _hash(args: argparse.Namespace) -> int:
    from edge_agent.api.auth import hash_password_cli

    return hash_password_cli(args)


def _instance(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("the instance number starts at 1")
    return n


def add_commands(sub) -> None:
    s = sub.add_parser("receive", help="control room: store events from all sites and serve the operators' console")
    s.add_argument("--config", required=True, type=Path, help="receiver YAML config")
    s.add_argument("--instance", type=_instance, default=None, metavar="N",
                   help="this receiver's number when several share the load (mqtt.share_group): its MQTT "
                   "client id gets -N; only instance 1 serves the console and runs retention")
    s.set_defaults(func=_receive)
    s = sub.add_parser("check-receiver-config", help="validate a receiver config file (connects to nothing)")
    s.add_argument("config", type=Path)
    s.set_defaults(func=_check)
    s = sub.add_parser("verify-evidence", help="check an evidence zip exported from the console")
    s.add_argument("zip", type=Path)
    key = s.add_mutually_exclusive_group()
    key.add_argument("--key-file", type=Path, default=None, help="the site's HMAC key file")
    key.add_argument("--key-env", default=None, help="env var holding the site's HMAC key")
    s.set_defaults(func=_verify)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nightwatch-control-room", description="The CCTV control room.")
    sub = p.add_subparsers(dest="command", required=True)
    add_commands(sub)
    s = sub.add_parser("hash-password", help="print a password hash for console.operators[].password_hash")
    s.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=_hash)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
