"""A local push service for the web push tests: it checks VAPID and decrypts.

Each subscription made by :meth:`PushServer.subscription` has its own P-256
key pair and auth secret, as a browser's would; the server keeps what it
received per path, decrypted with that subscription's keys (RFC 8291,
aes128gcm), and answers each path with the status the test gave it: the
statuses of ``script[path]`` first, one per message, then ``status[path]``
(default 201). :meth:`PushServer.stop` and :meth:`PushServer.start` take it
down and bring it back on the same address. ``delay`` (seconds, default 0)
makes it a slow push service: each message is recorded as it arrives, then
answered that long after, so a worker (which sends one request after the
other) sends at most one message per ``delay``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    claims: dict[str, Any]
    vapid_key: str
    payload: Any  # the decrypted JSON
    status: int = 0  # what the server answered
    at: float = 0.0  # time.monotonic() when it arrived


def check_vapid(authorization: str) -> tuple[dict[str, Any], str]:
    """The claims and key of a ``vapid t=<JWT>, k=<key>`` header, its ES256 signature verified."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization[:20]
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    token, key = fields["t"], fields["k"]
    header, claims, signature = token.split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    return json.loads(unb64url(claims)), key


class PushServer:
    """Run with ``with PushServer() as server:``; ``server.url(path)`` is an endpoint."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.status: dict[str, int] = {}
        self.script: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.delay = 0.0  # seconds between recording a message and answering it
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    got = server.receive(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                except (AssertionError, InvalidSignature, KeyError, ValueError) as exc:
                    server.errors.append(f"{self.path}: {type(exc).__name__}: {exc}")
                    self.send_response(400)
                    self.end_headers()
                    return
                got.status = status = server.answer(self.path)
                if server.delay:
                    time.sleep(server.delay)
                self.send_response(status)
                if status == 201 or 300 <= status < 400:
                    self.send_header("Location", f"{server.base}/messages{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.handler = Handler
        self.httpd: ThreadingHTTPServer | None = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread: threading.Thread | None = None

    def __enter__(self) -> PushServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> PushServer:
        """Answer on :attr:`base` (again, after :meth:`stop`)."""
        if self.httpd is None:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        if self.thread is None:
            self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
            self.thread.start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start`."""
        if self.httpd is None:
            return
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join()
            self.thread = None
        self.httpd.server_close()
        self.httpd = None

    def answer(self, path: str) -> int:
        """The status for the next message to ``path``."""
        with self.lock:
            script = self.script.get(path)
            if script:
                return script.pop(0)
        return self.status.get(path, 201)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def subscription(self, path: str) -> dict[str, str]:
        """A browser's subscription to ``path``: endpoint, p256dh, auth."""
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self.keys[path] = (private, auth)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.url(path), "p256dh": b64url(public), "auth": b64url(auth)}

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        assert headers["content-encoding"] == "aes128gcm"
        assert int(headers["ttl"]) >= 0
        claims, key = check_vapid(headers["authorization"])
        assert claims["aud"] == self.base and claims["exp"] > time.time()
        private, auth = self.keys[path]
        plain = http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm")
        got = Received(path, headers, body, claims, key, json.loads(plain), at=time.monotonic())
        self.received.append(got)
        return got

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def accepted(self, path: str | None = None) -> list[Received]:
        """What the server accepted (answered 2xx), at ``path`` or anywhere."""
        return [r for r in self.received if 200 <= r.status < 300 and path in (None, r.path)]
