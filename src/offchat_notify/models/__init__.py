"""Storage: one :class:`Event` per ``notify()`` call, one :class:`Notification` per recipient."""

from __future__ import annotations

from .channels import ChannelSend
from .events import Event, EventManager
from .inbox import Notification, NotificationQuerySet
from .preferences import Preference
from .push import PushSubscription
from .work import DeliveryChunk, JobRun, StagedMember

__all__ = [
    "ChannelSend",
    "DeliveryChunk",
    "Event",
    "EventManager",
    "JobRun",
    "Notification",
    "NotificationQuerySet",
    "Preference",
    "PushSubscription",
    "StagedMember",
]
