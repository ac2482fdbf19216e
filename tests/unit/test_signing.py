"""Canonical JSON, HMAC-SHA256 signatures and key loading."""

from __future__ import annotations

import json

import pytest

from edge_agent.publish.signing import SigningKeyError, canonical_json, load_key, sign, verify

KEY = b"a-site-key-of-enough-length"


def test_canonical_json_is_independent_of_key_order_and_whitespace():
    a = {"b": 1, "a": [1.5, {"y": "ü", "x": None}]}
    b = json.loads(json.dumps({"a": [1.5, {"x": None, "y": "ü"}], "b": 1}, indent=4))
    assert canonical_json(a) == canonical_json(b) == '{"a":[1.5,{"x":null,"y":"ü"}],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_sign_then_verify_survives_transport_and_detects_any_change():
    doc = {"event_id": "e1", "luma": 21.5, "images": {"original.jpg": {"sha256": "ab" * 32}}}
    signed = sign(doc, KEY)
    assert "signature" not in doc  # the input is not modified
    assert signed["signature"]["alg"] == "hmac-sha256" and len(signed["signature"]["value"]) == 64
    received = json.loads(json.dumps(signed, indent=2))  # reformatted on the way
    assert verify(received, KEY) == "valid"
    received["images"]["original.jpg"]["sha256"] = "cd" * 32
    assert verify(received, KEY) == "invalid"
    assert verify(signed, b"another-key-of-enough-length") == "invalid"
    assert verify(doc, KEY) == "unsigned"
    assert verify({**signed, "signature": "nonsense"}, KEY) == "invalid"
    assert sign(signed, KEY) == signed  # re-signing replaces, never nests


def test_load_key_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NW_KEY", "  env-key-0123456789  ")
    assert load_key("NW_KEY") == b"env-key-0123456789"
    f = tmp_path / "key"
    f.write_bytes(b"file-key-0123456789\n")
    assert load_key(file=f) == b"file-key-0123456789"
    assert load_key() is None


def test_key_errors_name_the_source_never_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("NW_MISSING", raising=False)
    with pytest.raises(SigningKeyError, match="NW_MISSING is not set"):
        load_key("NW_MISSING")
    monkeypatch.setenv("NW_SHORT", "short-secret")
    with pytest.raises(SigningKeyError, match="too short") as exc:
        load_key("NW_SHORT")
    assert "short-secret" not in str(exc.value)
    with pytest.raises(SigningKeyError, match="cannot read HMAC key file"):
        load_key(file=tmp_path / "absent")


def test_rfc8785_numbers_and_events_signed_in_the_older_form_still_verify():
    import hashlib
    import hmac as _hmac

    assert canonical_json({"a": 1.0, "b": 1e21, "c": 0.5}) == b'{"a":1,"b":1e+21,"c":0.5}'
    with pytest.raises(ValueError):
        canonical_json({"n": 2**60})  # JavaScript cannot hold it: refused, not silently rounded
    doc = {"event_id": "old", "luma": 21.0}
    legacy = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    old = {**doc, "signature": {"alg": "hmac-sha256", "value": _hmac.new(KEY, legacy, hashlib.sha256).hexdigest()}}
    assert verify(old, KEY) == "valid"
    assert verify({**old, "luma": 22.0}, KEY) == "invalid"
