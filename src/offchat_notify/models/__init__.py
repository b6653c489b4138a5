"""Storage: one :class:`Event` per ``notify()`` call, one :class:`Notification` per recipient."""

from __future__ import annotations

from .events import Event, EventManager
from .inbox import Notification, NotificationQuerySet
from .work import DeliveryChunk, JobRun, StagedMember

__all__ = [
    "DeliveryChunk",
    "Event",
    "EventManager",
    "JobRun",
    "Notification",
    "NotificationQuerySet",
    "StagedMember",
]
