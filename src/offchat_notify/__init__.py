"""offchat-notify: notification fan-out off the Django request.

The public API. Names that need the app registry (``notify`` and friends)
are loaded on first use, so importing this package never touches models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import registry
from .audience import Audience
from .exceptions import (
    AlreadyRegistered,
    DeliveryError,
    InvalidNotification,
    InvalidNotifierBackend,
    NotifyConfigurationError,
    NotifyError,
    NotRegistered,
    PermanentDeliveryError,
    PoisonMessage,
    RegistrationError,
    TransientDeliveryError,
    UnknownRole,
)
from .schedule.jobs import periodic

if TYPE_CHECKING:
    from .api import notify, notify_admins, send_bulk_notification

__version__ = "0.2.0.dev0"

__all__ = [
    # Sending
    "notify",
    "notify_admins",
    "send_bulk_notification",
    "Audience",
    "registry",
    "periodic",
    # Errors
    "NotifyError",
    "InvalidNotification",
    "UnknownRole",
    "DeliveryError",
    "TransientDeliveryError",
    "PermanentDeliveryError",
    "PoisonMessage",
    "RegistrationError",
    "AlreadyRegistered",
    "NotRegistered",
    "NotifyConfigurationError",
    "InvalidNotifierBackend",
]

_LAZY = {"notify", "notify_admins", "send_bulk_notification"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'offchat_notify' has no attribute {name!r}")
