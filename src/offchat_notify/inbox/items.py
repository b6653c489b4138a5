"""One notification as the inbox API and the stream send it: a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from offchat_notify.models import Event, Notification


def actor_name(actor: Any) -> str | None:
    """The actor's display name: the full name if it has one, else the username."""
    if actor is None:
        return None
    full = getattr(actor, "get_full_name", None)
    name = full() if callable(full) else ""
    if not name:
        username = getattr(actor, "get_username", None)
        name = username() if callable(username) else str(actor)
    return str(name)


def target_url(target: Any) -> str | None:
    """The target's URL when its model has ``get_absolute_url``, else None."""
    url = getattr(target, "get_absolute_url", None)
    if target is None or not callable(url):
        return None
    return str(url())


def event_fields(event: Event) -> dict[str, Any]:
    """What every recipient's item of ``event`` shares. Its actor and target
    should be loaded already, or each costs a query."""
    return {
        "verb": event.verb,
        "title": event.title,
        "body": event.body,
        "level": event.level,
        "data": event.data,
        "actor": actor_name(event.actor),
        "target_url": target_url(event.target),
    }


def item(notification: Notification, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """``notification`` as JSON. Its Event, actor and target should be loaded
    already (``Notification.objects.with_event()``), or each costs a query;
    ``shared``, the ``event_fields()`` of its
    Event, saves even that."""
    return {
        "id": notification.pk,
        **(shared if shared is not None else event_fields(notification.event)),
        "created_at": notification.created_at.isoformat(),
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


def items(notifications: Iterable[Notification]) -> list[dict[str, Any]]:
    return [item(n) for n in notifications]
