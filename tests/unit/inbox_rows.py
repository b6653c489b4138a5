"""Inbox rows for the inbox API's tests, written as the worker writes them (no backend)."""

from __future__ import annotations

from typing import Any

from offchat_notify import Audience
from offchat_notify.models import Event, Notification


def deliver(users: list[Any], verb: str = "message.sent", **fields: Any) -> Event:
    """An Event delivered to ``users``: one Notification each, as the worker writes them."""
    event = Event.objects.create(
        verb=verb,
        audience=Audience.users(users).spec,
        state=Event.State.DELIVERED,
        recipient_count=len(users),
        **fields,
    )
    Notification.objects.bulk_create([Notification(event=event, recipient=u) for u in users])
    return event


def inbox_ids(user: Any) -> list[int]:
    """``user``'s notification ids, newest first."""
    return list(Notification.objects.for_user(user).order_by("-id").values_list("id", flat=True))
