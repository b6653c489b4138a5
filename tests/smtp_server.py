"""A real SMTP server for the tests (aiosmtpd), recording who got what."""

from __future__ import annotations

import collections
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    """aiosmtpd handler: counts the messages each recipient got, by subject."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: collections.Counter[str] = collections.Counter()
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for address in envelope.rcpt_tos:
                self.received[address.lower()] += 1
            self.messages.append(envelope.content)
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return sum(self.received.values())


class SMTPServer:
    """Start, stop and start again an SMTP server on one port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> SMTPServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
