"""Why a stream URL cannot be opened, in words, and whether its host:port accepts connections.

OpenCV only says "could not be opened". When it does, explain(url) asks the camera itself: for
rtsp:// it sends one DESCRIBE (answering a 401 challenge with the URL's credentials, Digest or
Basic, the way FFmpeg would) and turns the status into a sentence: wrong user or password (401),
no stream at this path (404), connection refused, no answer, unknown host. For the other schemes
it only checks that the host:port accepts a TCP connection. The password is never part of the
answer. reachable(url) is the cheap check the capture thread polls while a camera is down.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
from urllib.parse import unquote, urlsplit, urlunsplit

PROBE_TIMEOUT_S = 2.0
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def host_port(url: str) -> tuple[str, int] | None:
    """(host, port) of a stream URL; None when it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or DEFAULT_PORTS.get(parts.scheme.lower(), 554)


def reachable(url: str, timeout: float = 0.5) -> bool:
    """True when the URL's host:port accepts a TCP connection now."""
    hp = host_port(url)
    if hp is None:
        return False
    try:
        with socket.create_connection(hp, timeout=timeout):
            return True
    except OSError:
        return False


def explain(url: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """One sentence saying why the camera at url does not deliver a stream (never the password)."""
    hp = host_port(url)
    if hp is None:
        return "the URL has no host"
    host, port = hp
    try:
        sock = socket.create_connection(hp, timeout=timeout)
    except socket.gaierror:
        return f"unknown host {host}"
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on {host}:{port}"
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:.0f} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    with sock:
        if urlsplit(url).scheme.lower() != "rtsp":
            return f"{host}:{port} accepts connections but the stream could not be opened"
        try:
            status, reason = _describe(sock, url, timeout)
        except TimeoutError:
            return f"{host}:{port} accepts connections but sent no RTSP answer within {timeout:.0f} s"
        except (OSError, ValueError) as exc:
            return f"{host}:{port} accepts connections but the RTSP exchange failed ({exc})"
    has_login = bool(urlsplit(url).username)
    code = f"RTSP {status} {reason}".strip()
    if status == 401:
        if has_login:
            return f"the camera refused the user name or password ({code})"
        return f"the camera asks for a user name and password and the URL has none ({code})"
    if status == 404:
        return f"the camera has no stream at path {urlsplit(url).path or '/'} ({code})"
    if status == 200:
        return "the camera answers (RTSP 200 OK) but its stream could not be decoded"
    return f"the camera answered {code}"


# --------------------------------------------------------------------------- RTSP DESCRIBE


def _describe(sock: socket.socket, url: str, timeout: float) -> tuple[int, str]:
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    netloc = parts.netloc.rsplit("@", 1)[-1]  # the request URI carries no credentials
    uri = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    sock.settimeout(timeout)
    reader = _Reader(sock)
    status, reason, headers = _request(sock, reader, uri, 1, None)
    if status != 401 or not user:
        return status, reason
    challenges = [v for k, v in headers if k == "www-authenticate"]
    auth = _authorization(challenges, user, password, uri)
    if auth is None:
        return status, reason
    status, reason, _ = _request(sock, reader, uri, 2, auth)
    return status, reason


def _request(sock, reader, uri: str, cseq: int, auth: str | None) -> tuple[int, str, list[tuple[str, str]]]:
    lines = [
        f"DESCRIBE {uri} RTSP/1.0",
        f"CSeq: {cseq}",
        "Accept: application/sdp",
        "User-Agent: nightwatch-edge",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
    m = re.match(r"RTSP/\d\.\d\s+(\d{3})\s*(.*)", head[0])
    if not m:
        raise ValueError(f"not an RTSP answer: {head[0][:60]!r}")
    headers = []
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    length = next((int(v) for k, v in headers if k == "content-length" and v.isdigit()), 0)
    reader.exactly(length)  # the body (SDP or an error page), so the next answer starts clean
    return int(m.group(1)), m.group(2).strip(), headers


def _authorization(challenges: list[str], user: str, password: str, uri: str) -> str | None:
    digest = next((c for c in challenges if c.lower().startswith("digest")), None)
    if digest is not None:
        p = {k.lower(): a if a else b for k, a, b in _PARAM.findall(digest[len("digest") :])}
        realm, nonce = p.get("realm", ""), p.get("nonce", "")

        def md5(s: str) -> str:
            return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()

        ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"DESCRIBE:{uri}")
        fields = f'username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
        if "auth" in [q.strip() for q in p.get("qop", "").split(",")]:
            cnonce, nc = os.urandom(8).hex(), "00000001"
            response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            response = md5(f"{ha1}:{nonce}:{ha2}")
        if p.get("opaque"):
            fields += f', opaque="{p["opaque"]}"'
        return f'Digest {fields}, response="{response}"'
    if any(c.lower().startswith("basic") for c in challenges):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def _more(self) -> None:
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ValueError("the camera closed the connection")
        self.buf += chunk

    def until(self, sep: bytes, limit: int = 65536) -> bytes:
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("RTSP answer header too long")
            self._more()
        head, self.buf = self.buf.split(sep, 1)
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out
