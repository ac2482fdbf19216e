"""Evidence export of one event, and its verification by anyone who receives the zip.

The zip holds the event's messages exactly as the box sent them (event/NNN-<phase>.json, signed
when the site has a key), every image as received (images/NNN-<name>), SHA256SUMS (each image's
sha256 *as its signed event message announced it*), verification.json (what the control room
checked when it exported) and README.txt. A third party checks it with

    edge-agent verify-evidence EVENT.zip [--key-file SITE.key]

(every image against the hash in the event message, the signature with the site's key), or
without our software: `sha256sum -c SHA256SUMS` in the unzipped folder, and
`node docs/examples/verify_event.mjs event/NNN-phase.json KEYFILE images` for the signatures.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

from edge_agent.media import sha256_hex
from edge_agent.publish.signing import SigningKeyError, load_key, verify

README = """Evidence export of event {event_id} (site {site}, camera {camera})
Exported {exported} by {operator} from the control room.

event/       the event's messages as the box sent them (JSON, HMAC-SHA256 signed when the site signs)
images/      every image as received, named <message seq>-<name>
SHA256SUMS   the sha256 of each image as its event message announced it
verification.json  what the control room checked at export

Verify:
    edge-agent verify-evidence {zip_name} --key-file SITE.key    # images and signatures
    sha256sum -c SHA256SUMS                                       # images, without our software
Exit 0 means every image matches its signed hash (and, with a key, every signature is valid).
"""


def export_event(store, detail: dict[str, Any], operator: str) -> bytes:
    """The zip of one event (detail: queries.event_detail)."""
    site, event_id = detail["site"], detail["event_id"]
    messages = store.query("SELECT * FROM events WHERE site = ? AND event_id = ? ORDER BY seq, id", (site, event_id))
    images = store.query("SELECT * FROM images WHERE site = ? AND event_id = ? ORDER BY seq, name", (site, event_id))
    buf = io.BytesIO()
    sums = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for m in messages:
            z.writestr(f"event/{Path(m['path']).name}", store.read(m["path"]))
        for img in images:
            if not img["path"]:
                continue
            name = f"{img['seq']:03d}-{img['name']}"
            try:
                z.writestr(f"images/{name}", store.read(img["path"]))
            except OSError:
                continue  # missing on disk: verification.json and verify-evidence say so
            if img["expected_sha256"]:
                sums.append(f"{img['expected_sha256']}  images/{name}\n")
        z.writestr("SHA256SUMS", "".join(sums))
        report = {"site": site, "camera": detail["camera"], "event_id": event_id, "exported_by": operator,
                  "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "integrity": detail["integrity"],
                  "images": [{k: i[k] for k in ("name", "seq", "expected_sha256", "sha256_now", "check")}
                             for i in detail["images"]]}
        z.writestr("verification.json", json.dumps(report, indent=2, sort_keys=True))
        z.writestr("README.txt", README.format(event_id=event_id, site=site, camera=detail["camera"],
                                               exported=report["exported_at"], operator=operator,
                                               zip_name=f"{event_id}.zip"))
    return buf.getvalue()


def verify_zip(path: str | Path, key: bytes | None) -> tuple[bool, list[str]]:
    """(all good, report lines). Every image any message announces must be in the zip with that
    sha256; with a key every message's signature must be valid."""
    lines: list[str] = []
    ok = True
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        messages = sorted(n for n in names if n.startswith("event/") and n.endswith(".json"))
        if not messages:
            return False, ["no event message in the zip (event/*.json)"]
        for name in messages:
            doc = json.loads(z.read(name))
            seq = int(doc.get("seq", 0))
            if key is None:
                sig = "signed (no key given: not checked)" if "signature" in doc else "unsigned"
            else:
                sig = verify(doc, key)
                ok &= sig == "valid"
            lines.append(f"{name}: signature {sig}")
            for img, meta in sorted((doc.get("images") or {}).items()):
                member = f"images/{seq:03d}-{img}"
                if member not in names:
                    lines.append(f"  {member}: MISSING")
                    ok = False
                    continue
                digest = sha256_hex(z.read(member))
                good = digest == meta.get("sha256")
                ok &= good
                lines.append(f"  {member}: {'ok' if good else 'FAILED (sha256 ' + digest + ')'}")
    return ok, lines


def verify_cli(args: argparse.Namespace) -> int:
    """`edge-agent verify-evidence ZIP [--key-file F | --key-env NAME]`: 0 valid, 1 not, 2 unreadable."""
    try:
        key = load_key(args.key_env, args.key_file)
        ok, lines = verify_zip(args.zip, key)
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, SigningKeyError) as exc:
        print(f"verify-evidence: cannot read {args.zip}: {exc}")
        return 2
    print("\n".join(lines))
    print("VALID: every image matches its signed hash" + (" and every signature is valid" if key else "")
          if ok else "NOT VALID: see the lines above")
    return 0 if ok else 1
