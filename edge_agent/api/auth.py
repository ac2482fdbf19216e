"""Password hashing (stdlib scrypt), bearer tokens with a TTL, and per-client login backoff.

The password is stored only as ``scrypt$n$r$p$salt$hash`` (base64 parts) in api.auth.password_hash.
Tokens are random strings handed out at login; only their SHA-256 is kept in memory, so a memory
dump or a log line never holds a usable token.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import secrets
import sys
import threading
import time
from collections.abc import Callable

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when password matches the stored hash; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def hash_password_cli(args: argparse.Namespace) -> int:
    """`edge-agent hash-password`: print a hash for api.auth.password_hash (never the password)."""
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New API password: ")
        if getpass.getpass("Repeat it: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("use at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


class TokenStore:
    """Bearer tokens with a time to live. Thread-safe; holds only token digests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_tokens: int = 256):
        self._clock = clock
        self._max = max_tokens
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def issue(self, ttl_s: float) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._purge(now)
            if len(self._expiry) >= self._max:  # drop the oldest-expiring token
                del self._expiry[min(self._expiry, key=self._expiry.get)]
            self._expiry[self._key(token)] = now + ttl_s
        return token

    def valid(self, token: str) -> bool:
        now = self._clock()
        with self._lock:
            exp = self._expiry.get(self._key(token))
            if exp is None:
                return False
            if exp <= now:
                del self._expiry[self._key(token)]
                return False
            return True

    def revoke(self, token: str) -> None:
        with self._lock:
            self._expiry.pop(self._key(token), None)

    def revoke_all(self) -> None:
        with self._lock:
            self._expiry.clear()

    def _purge(self, now: float) -> None:
        for k in [k for k, exp in self._expiry.items() if exp <= now]:
            del self._expiry[k]


class LoginThrottle:
    """Per-client exponential backoff after failed logins.

    The first `free_failures` failures cost nothing; each later one doubles the wait (from
    `base_s`, capped at `max_s`) before that client may try again. A success clears the record.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        free_failures: int = 3,
        base_s: float = 1.0,
        max_s: float = 300.0,
        max_clients: int = 4096,
    ):
        self._clock = clock
        self.free_failures = free_failures
        self.base_s = base_s
        self.max_s = max_s
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._state: dict[str, tuple[int, float]] = {}  # client -> (failures, blocked_until)

    def retry_after(self, client: str) -> float:
        """Seconds this client must still wait before a login attempt (0 = may try now)."""
        with self._lock:
            _, until = self._state.get(client, (0, 0.0))
        return max(0.0, until - self._clock())

    def failure(self, client: str) -> float:
        """Record a failed attempt; returns the wait imposed from now on."""
        now = self._clock()
        with self._lock:
            failures, _ = self._state.get(client, (0, 0.0))
            failures += 1
            extra = failures - self.free_failures
            wait = 0.0 if extra <= 0 else min(self.max_s, self.base_s * 2 ** (extra - 1))
            if client not in self._state and len(self._state) >= self._max_clients:
                self._state.pop(next(iter(self._state)))  # forget the oldest client
            self._state[client] = (failures, now + wait)
        return wait

    def success(self, client: str) -> None:
        with self._lock:
            self._state.pop(client, None)
