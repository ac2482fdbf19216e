"""Operator logins for the console: scrypt-hashed passwords from the config (the box's hash
format, edge-agent hash-password), server-side sessions that expire, a CSRF token per session, and
the box's per-client login throttle.

The session travels in an HttpOnly, SameSite=Strict cookie; every request that changes something
must also carry the session's CSRF token in the X-CSRF-Token header, so another site can neither
read the console nor make a logged-in browser change anything. No CORS header is ever sent.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.api.auth import LoginThrottle, hash_password, verify_password
from edge_agent.control_room.config import ConsoleConfig

COOKIE = "nw_console"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 1024
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))  # an unknown name costs the same as a wrong password


@dataclass(frozen=True)
class Session:
    operator: str
    role: str  # "operator" | "viewer"
    csrf: str
    expires: float

    @property
    def may_change(self) -> bool:
        return self.role == "operator"


class Sessions:
    def __init__(self, cfg: ConsoleConfig, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.throttle = LoginThrottle()
        self._lock = threading.Lock()
        self._by_key: dict[str, Session] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def login(self, name: str, password: str) -> tuple[str, Session] | None:
        """(cookie token, session) for a right name and password, else None."""
        account = next((o for o in self.cfg.operators if o.name == name), None)
        ok = verify_password(password, account.password_hash.get_secret_value() if account else _DUMMY_HASH)
        if not ok or account is None:
            return None
        token = secrets.token_urlsafe(32)
        session = Session(account.name, account.role, secrets.token_urlsafe(24), self.clock() + self.cfg.session_ttl_s)
        with self._lock:
            self._purge()
            if len(self._by_key) >= MAX_SESSIONS:
                del self._by_key[min(self._by_key, key=lambda k: self._by_key[k].expires)]
            self._by_key[self._key(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._by_key.get(self._key(token))
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._by_key[self._key(token)]
                return None
            return session

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_key.pop(self._key(token), None)

    def _purge(self) -> None:
        now = self.clock()
        for k in [k for k, s in self._by_key.items() if s.expires <= now]:
            del self._by_key[k]
