"""live_stream.py's clients: many HTTP connections on one asyncio event loop, stdlib only.

- :class:`StreamClient`: one logged-in browser tab holding ``GET
  /notifications/stream/`` open; it decodes the chunked body, splits it into
  Server-Sent Events and stamps each ``notification`` event with
  ``time.perf_counter()`` when the bytes that complete it are read;
- :class:`PollClient`: one tab polling ``GET /notifications/unread/`` every
  ``interval`` seconds on a keep-alive connection (a new one when the server
  has closed it), from a random phase, recording each answer's count;
- :class:`Loop`: the event loop, in a thread of its own, so the benchmark's
  main thread can save messages with Django's ORM meanwhile.

All times are ``perf_counter()`` seconds, the clock the sender reads just
before its commit.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

STREAM_PATH = "/notifications/stream/"
UNREAD_PATH = "/notifications/unread/"


class HttpError(Exception):
    """An answer other than 200, or a connection that broke before answering."""


class Loop:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="clients")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coro`` on the loop; wait for its result here."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def request(path: str, host: str, session: str, accept: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n"
        f"Cookie: sessionid={session}\r\nCache-Control: no-cache\r\n\r\n"
    ).encode()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and the (lower-cased) headers of an HTTP/1.1 answer."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise HttpError(f"connection closed before the answer: {exc!r}") from exc
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The whole body of a non-streaming answer (Content-Length or chunked)."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return body
        body += chunk[:-2]


class Dechunker:
    """Incremental decoder of ``Transfer-Encoding: chunked``."""

    def __init__(self) -> None:
        self.raw = b""
        self.left = 0  # bytes of the current chunk still to come, then its CRLF

    def feed(self, data: bytes) -> bytes:
        self.raw += data
        out = []
        while self.raw:
            if self.left:
                take = self.raw[: self.left]
                out.append(take)
                self.raw = self.raw[len(take) :]
                self.left -= len(take)
                if self.left:
                    break
                continue
            if self.raw.startswith(b"\r\n"):
                self.raw = self.raw[2:]
                continue
            end = self.raw.find(b"\r\n")
            if end < 0:
                break
            self.left = int(self.raw[:end].split(b";")[0], 16)
            self.raw = self.raw[end + 2 :]
        return b"".join(out)


@dataclass
class Received:
    """One ``notification`` event as a client got it."""

    at: float
    id: str
    title: str
    unread: int | None


@dataclass
class StreamClient:
    user_id: int
    session: str
    status: int = 0
    error: str = ""
    events: list[Received] = field(default_factory=list)
    heartbeats: int = 0
    writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int) -> None:
        """Open the stream; return once the server has answered its head (or failed)."""
        reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(request(STREAM_PATH, f"{host}:{port}", self.session, "text/event-stream"))
        status, headers = await read_head(reader)
        self.status = status
        if status != 200:
            body = await read_body(reader, headers) if "content-length" in headers else b""
            self.error = body.decode(errors="replace")[:200]
            self.writer.close()
            return
        self.reader, self.chunked = reader, headers.get("transfer-encoding") == "chunked"

    async def listen(self, on_event: Callable[[StreamClient, Received], None]) -> None:
        """Read events until the connection closes or the task is cancelled."""
        dechunk = Dechunker() if self.chunked else None
        buffer = b""
        while True:
            data = await self.reader.read(65536)
            at = time.perf_counter()
            if not data:
                self.error = self.error or "closed by the server"
                return
            buffer += dechunk.feed(data) if dechunk else data
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                self._block(block, at, on_event)

    def _block(
        self, block: bytes, at: float, on_event: Callable[[StreamClient, Received], None]
    ) -> None:
        fields: dict[bytes, bytes] = {}
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                self.heartbeats += 1
                continue
            name, _, value = line.partition(b":")
            fields[name] = fields.get(name, b"") + value.removeprefix(b" ")
        if fields.get(b"event") != b"notification":
            return
        data = json.loads(fields.get(b"data", b"{}"))
        got = Received(at, fields.get(b"id", b"").decode(), data.get("title"), data.get("unread"))
        self.events.append(got)
        on_event(self, got)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


REQUEST_TIMEOUT = 30.0


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status, headers = await read_head(reader)
    return status, headers, await read_body(reader, headers)


@dataclass
class Poll:
    sent: float
    answered: float
    unread: int


@dataclass
class PollClient:
    user_id: int
    session: str
    polls: list[Poll] = field(default_factory=list)
    connections: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    async def run(self, host: str, port: int, start: float, interval: float, until: float) -> None:
        """Poll at ``start``, ``start + interval``... until ``until`` (perf_counter).

        One request at a time: a tick that passed while an answer was awaited
        is skipped (``skipped``), so an overloaded server gets fewer polls, not
        a queue of them. An answer takes at most ``REQUEST_TIMEOUT`` seconds.
        """
        reader = writer = None
        tick = start
        while tick < until:
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            for attempt in (1, 2):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                        self.connections += 1
                    assert reader is not None
                    sent = time.perf_counter()
                    writer.write(request(UNREAD_PATH, f"{host}:{port}", self.session, "*/*"))
                    status, headers, body = await asyncio.wait_for(_answer(reader), REQUEST_TIMEOUT)
                    answered = time.perf_counter()
                    if status != 200:
                        raise HttpError(f"{status}: {body[:200]!r}")
                    self.polls.append(Poll(sent, answered, json.loads(body)["unread"]))
                    if headers.get("connection", "").lower() == "close":
                        writer.close()
                        writer = None
                    break
                except (HttpError, OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    # The server closed the keep-alive connection (its timeout is about
                    # the poll interval): reconnect and ask again, as a browser does.
                    if writer is not None:
                        writer.close()
                    writer = None
                    if attempt == 2 or isinstance(exc, TimeoutError):
                        self.errors.append(repr(exc))
                        break
            tick += interval
            while tick < time.perf_counter():
                tick += interval
                self.skipped += 1
        if writer is not None:
            writer.close()
