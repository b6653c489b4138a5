from __future__ import annotations

import abc
from typing import Any

from django.core.checks import CheckMessage


class BaseBackend(abc.ABC):
    """Decides where and when an Event is delivered.

    ``notify()`` writes the Event, then, once the surrounding transaction has
    committed, calls :meth:`dispatch` with the Event's id. A subclass must
    implement :meth:`dispatch`, and should end up calling
    :func:`offchat_notify.delivery.deliver` (in-process or in a worker) with
    that id. Nothing else is passed: the Event row holds the payload.

    Subclasses may override :meth:`check` to add system checks.
    """

    #: True if :meth:`dispatch` delivers before it returns (no worker needed).
    delivers_inline: bool = False

    @abc.abstractmethod
    def dispatch(self, event_id: int) -> None:
        """Have the Event ``event_id`` delivered. Called after commit."""

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        """Return system check messages about this backend's setup."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
