"""A real ASGI server (uvicorn) on the test database, and a stdlib SSE client for it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client

from tests.helpers import ROOT, free_port, port_answers, wait_for

STREAM = "/notifications/stream/"


class AsgiServer:
    """``uvicorn tests.asgi:application`` in its own process group, on the test database."""

    def __init__(self, database: str, log: Path, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.database = database
        self.log_path = log
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AsgiServer:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.asgi_settings",
            "TEST_REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
            "OFFCHAT_WORKER_DATABASE": self.database,
            "OFFCHAT_DB_APPLICATION_NAME": "offchat-web",
            "DATABASE_URL": settings.DATABASE_URL,
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--lifespan",
                "off",
                "--timeout-graceful-shutdown",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: port_answers(self.port) or self.proc.poll() is not None,
            timeout=60,
            what="uvicorn to listen",
            on_fail=self.output,
        )
        assert self.proc.poll() is None, self.output()
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        self.proc = None

    def get(self, path: str, cookie: str | None = None, **headers: str) -> tuple[int, Any]:
        """A plain GET: (status, decoded JSON body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=_headers(cookie, headers))
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def stream(self, cookie: str | None = None, query: str = "", **headers: str) -> SseClient:
        return SseClient(self.port, STREAM + query, cookie, headers)

    def status(self, staff_cookie: str) -> dict[str, Any]:
        status, body = self.get(STREAM + "?status=1", staff_cookie)
        assert status == 200, body
        return body


def _headers(cookie: str | None, extra: dict[str, str]) -> dict[str, str]:
    headers = {"Accept": "text/event-stream", **{k.replace("_", "-"): v for k, v in extra.items()}}
    if cookie:
        headers["Cookie"] = cookie
    return headers


def session_cookie(user: Any) -> str:
    """A ``Cookie`` header value that logs ``user`` in (a real session in the database)."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class SseClient:
    """One open stream, read by a thread: its status, headers, events and comments."""

    def __init__(self, port: int, path: str, cookie: str | None, headers: dict[str, str]):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request("GET", path, headers=_headers(cookie, headers))
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.fields: list[str] = []  # every field line, in order (retry:, id:, ...)
        self.closed = False
        self._lock = threading.Lock()
        if self.status != 200:
            self.body = json.loads(self.response.read() or b"null")
            self.conn.close()
            return
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        current: dict[str, str] = {}
        with contextlib.suppress(Exception):
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                with self._lock:
                    if not line:
                        if "data" in current:
                            self.events.append(
                                {
                                    **current,
                                    "json": json.loads(current["data"]),
                                    "received_at": time.perf_counter(),
                                }
                            )
                        current = {}
                    elif line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        self.fields.append(name)
                        current[name] = value.lstrip(" ")
        self.closed = True

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def ids(self) -> list[int]:
        return [int(e["id"]) for e in self.received()]

    def wait_events(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        wait_for(
            lambda: len(self.received()) >= n,
            timeout=timeout,
            what=f"{n} event(s) on the stream (have {len(self.received())})",
        )
        return self.received()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.conn.sock is not None:
                self.conn.sock.shutdown(2)
        self.conn.close()
