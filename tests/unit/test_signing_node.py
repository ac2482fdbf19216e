"""A control room in another language verifies our signatures: the documented Node verifier
(docs/examples/verify_event.mjs) checks events signed by the agent, floats and unicode included."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_agent.publish.signing import load_key, sign

NODE = shutil.which("node")
VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_event.mjs"
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node (Debian package nodejs)")

DOCS = [
    {"event_id": "e1", "ts": 1796288905.0, "luma": 21.0, "ratio": 5.0},  # floats with nothing after the point
    {"event_id": "e2", "score": 0.1 + 0.2, "tiny": 1e-7, "huge": 1e21, "neg": -0.0, "n": 9007199254740991},
    {"event_id": "e3", "camera": "porte d'entrée", "note": "ü\u2028\"quoted\"", "faces": [{"box": [1, 2, 3.5, 4]}],
     "nested": {"b": [True, False, None], "a": {"z": 1.5e-300, "y": 123456789.125}}},
]


def _node(*args) -> subprocess.CompletedProcess:
    return subprocess.run([NODE, str(VERIFIER), *map(str, args)], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("doc", DOCS, ids=[d["event_id"] for d in DOCS])
def test_node_verifies_what_the_agent_signs(tmp_path, doc):
    key_file = tmp_path / "site.key"
    key_file.write_bytes(b"  a-site-key-of-enough-length\n")  # whitespace around it: stripped on both sides
    signed = sign(doc, load_key(file=key_file))
    path = tmp_path / "event.json"
    path.write_text(json.dumps(signed, indent=2, ensure_ascii=False))
    r = _node(path, key_file)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signature valid" in r.stdout
    tampered = json.loads(path.read_text())
    tampered["event_id"] += "x"
    path.write_text(json.dumps(tampered))
    assert _node(path, key_file).returncode == 1


def test_node_checks_the_images_against_their_hashes(tmp_path):
    key_file = tmp_path / "k"
    key_file.write_text("a-site-key-of-enough-length")
    (tmp_path / "original.jpg").write_bytes(b"\xff\xd8jpeg bytes")
    doc = sign({"event_id": "e", "images": {"original.jpg": {
        "sha256": hashlib.sha256(b"\xff\xd8jpeg bytes").hexdigest()}}}, load_key(file=key_file))
    (tmp_path / "e.json").write_text(json.dumps(doc))
    assert _node(tmp_path / "e.json", key_file, tmp_path).returncode == 0
    (tmp_path / "original.jpg").write_bytes(b"\xff\xd8changed")
    r = _node(tmp_path / "e.json", key_file, tmp_path)
    assert r.returncode == 1 and "MISMATCH" in r.stdout
    (tmp_path / "u.json").write_text(json.dumps({"event_id": "u"}))
    assert _node(tmp_path / "u.json", key_file).returncode == 2
