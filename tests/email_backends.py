"""Email backends for the tests: a counting one, and one that fails on chosen addresses."""

from __future__ import annotations

import smtplib
from typing import Any, ClassVar

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class CountingBackend(LocmemBackend):
    """locmem, counting the connections opened (one per batch) and failing on demand.

    ``refuse``: addresses answered 550 (permanent). ``drop_after``: after this
    many messages in all, every send raises SMTPServerDisconnected (transient).
    """

    opened: ClassVar[int] = 0
    sent: ClassVar[int] = 0
    refuse: ClassVar[set[str]] = set()
    drop_after: ClassVar[int | None] = None

    @classmethod
    def reset(cls) -> None:
        cls.opened, cls.sent, cls.refuse, cls.drop_after = 0, 0, set(), None

    def open(self) -> bool:
        type(self).opened += 1
        return True

    def send_messages(self, messages: Any) -> int:
        cls = type(self)
        for message in messages:
            if cls.drop_after is not None and cls.sent >= cls.drop_after:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            refused = set(message.to) & cls.refuse
            if refused:
                raise smtplib.SMTPRecipientsRefused(
                    dict.fromkeys(refused, (550, b"5.1.1 No such user"))
                )
            cls.sent += 1
        return super().send_messages(messages)
