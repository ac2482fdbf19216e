"""Evidence integrity: canonical JSON, sha256 and an optional HMAC-SHA256 signature per site.

The signature covers the canonical JSON of the event document without its "signature" field,
as RFC 8785 (JSON Canonicalization Scheme) writes it: keys sorted by UTF-16 code units, no
whitespace, UTF-8, numbers as ECMAScript writes them (1.0 is `1`, 1e21 is `1e+21`), no
NaN/Infinity, integers within +-2^53. JavaScript's JSON.stringify of the parsed document with sorted
keys gives the same bytes, so any language can verify (docs/examples/verify_event.mjs). A receiver
re-canonicalizes the parsed document and checks the HMAC with the site's key, so transport
formatting never matters. Documents signed before the switch (Python's json.dumps form, where 1.0
stays `1.0`) still verify: verify() tries that form second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Literal

import rfc8785

SIGNATURE_FIELD = "signature"
ALGORITHM = "hmac-sha256"
MIN_KEY_BYTES = 16

VerifyResult = Literal["valid", "invalid", "unsigned"]


class SigningKeyError(ValueError):
    """The per-site key could not be read (the message never contains the key)."""


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes of obj; ValueError for NaN/Infinity or an integer JavaScript cannot hold."""
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonical JSON: {exc}") from exc


def _legacy_canonical_json(obj: Any) -> bytes:
    """The form agents signed before RFC 8785 (Python's json.dumps: 1.0 stays `1.0`)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def _unsigned(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != SIGNATURE_FIELD}


def signature_of(doc: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_json(_unsigned(doc)), hashlib.sha256).hexdigest()


def sign(doc: dict[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of doc with {"signature": {"alg": "hmac-sha256", "value": <hex>}} added."""
    out = _unsigned(doc)
    out[SIGNATURE_FIELD] = {"alg": ALGORITHM, "value": signature_of(out, key)}
    return out


def verify(doc: dict[str, Any], key: bytes) -> VerifyResult:
    sig = doc.get(SIGNATURE_FIELD)
    if sig is None:
        return "unsigned"
    if not isinstance(sig, dict) or sig.get("alg") != ALGORITHM or not isinstance(sig.get("value"), str):
        return "invalid"
    unsigned = _unsigned(doc)
    for canon in (canonical_json, _legacy_canonical_json):
        try:
            expected = hmac.new(key, canon(unsigned), hashlib.sha256).hexdigest()
        except (TypeError, ValueError):
            continue
        if hmac.compare_digest(expected, sig["value"]):
            return "valid"
    return "invalid"


def load_key(env_name: str | None = None, file: str | Path | None = None) -> bytes | None:
    """The HMAC key from an env var or a file; None if neither is set.

    The key is the UTF-8 bytes of the variable / the file's bytes with leading and trailing ASCII
    whitespace (space, tab, CR, LF, VT, FF) removed, so a trailing newline never changes the key.

    Raises SigningKeyError naming the variable or file (never the key) when it is missing or short.
    """
    if env_name and file:
        raise SigningKeyError("give the HMAC key in an env var or a file, not both")
    if env_name:
        value = os.environ.get(env_name)
        if value is None or not value.strip():
            raise SigningKeyError(f"HMAC key env var {env_name} is not set or empty")
        key = value.strip().encode("utf-8")
        where = f"env var {env_name}"
    elif file:
        try:
            key = Path(file).read_bytes().strip()
        except OSError as exc:
            raise SigningKeyError(f"cannot read HMAC key file {file}: {exc.strerror or exc}") from exc
        where = f"file {file}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise SigningKeyError(f"HMAC key in {where} is too short (need at least {MIN_KEY_BYTES} bytes)")
    return key
