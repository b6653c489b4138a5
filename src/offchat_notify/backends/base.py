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

    Subclasses may override :meth:`check` to add system checks, and
    ``__init__`` to prepare what :meth:`dispatch` needs: the backend is built
    on the first ``notify()``, before anything is written, so a configuration
    error raised there reaches the caller with nothing half-done.
    """

    @abc.abstractmethod
    def dispatch(self, event_id: int) -> None:
        """Have the Event ``event_id`` delivered. Called after commit."""

    def redispatch(self, event_id: int) -> None:
        """Hand an Event over again, for the relay and retries.

        Unlike :meth:`dispatch`, it must raise if the backend cannot take the
        Event now, so the relay knows to try later. Defaults to :meth:`dispatch`.
        """
        self.dispatch(event_id)

    def dispatch_chunk(self, event_id: int, index: int) -> None:
        """Have one chunk of a large Event delivered. Defaults to here and now."""
        from offchat_notify.chunks import deliver_chunk

        deliver_chunk(event_id, index)

    def enqueue_job(self, name: str) -> None:
        """Have the periodic job ``name`` run. Defaults to running it here and now."""
        from offchat_notify.scheduler import run_job

        run_job(name)

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """Return system check messages about this backend's setup (before it is built)."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
