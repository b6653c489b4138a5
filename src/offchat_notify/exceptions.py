"""The errors offchat-notify raises.

Two families, kept apart on purpose:

* :class:`NotifyError` and its subclasses are runtime errors: bad input at a
  call, a failed delivery. Code may catch them.
* :class:`NotifyConfigurationError` and its subclasses are configuration
  mistakes. They derive from Django's ``ImproperlyConfigured`` and *not* from
  :class:`NotifyError`, so an ``except NotifyError`` can never swallow them.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError


class NotifyError(Exception):
    """Root of the runtime errors. Do not raise directly."""


class InvalidNotification(NotifyError, ValueError):
    """A ``notify()`` call was given input it cannot store or deliver."""


class UnknownRole(InvalidNotification, LookupError):
    """An audience names a role the configured role resolver does not know."""


class RegistrationError(NotifyError):
    """A registry rule could not be registered or unregistered."""


class AlreadyRegistered(RegistrationError):
    """A rule with the same model, event and name is already registered."""


class NotRegistered(RegistrationError, LookupError):
    """No rule matches what was asked to be unregistered."""


class DeliveryError(NotifyError):
    """Delivering an Event failed. The failure is recorded on the Event."""


class TransientDeliveryError(DeliveryError):
    """A delivery failed in a way that may pass (database, network); it is retried."""


class PermanentDeliveryError(DeliveryError):
    """A delivery cannot succeed (a malformed Event, or its attempts are used up)."""


class PoisonMessage(PermanentDeliveryError):
    """A broker message that is not a valid delivery job; it is dead-lettered."""


class NotifyConfigurationError(ImproperlyConfigured):
    """``settings.OFFCHAT_NOTIFY`` (or a setting it depends on) is wrong."""


class InvalidNotifierBackend(NotifyConfigurationError):
    """``OFFCHAT_NOTIFY['BACKEND']`` does not name a usable backend."""


class NotifyWarning(Warning):
    """Root of the warnings offchat-notify issues."""


class NotifyDeprecationWarning(NotifyWarning, DeprecationWarning):
    """A name or a setting that still works, and will stop working in a later release."""


def is_lock_wait(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error that caused it, is SQLite's "database is locked".

    A writer waited for SQLite's write lock longer than its ``timeout``:
    retrying mends it, so delivery logs it as a WARNING, without a traceback.
    """
    while exc is not None:
        if isinstance(exc, OperationalError) and "database is locked" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
