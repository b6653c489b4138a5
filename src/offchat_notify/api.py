"""The request side: validate, write one Event, dispatch it after commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import Model

from .audience import Audience
from .backends import get_backend
from .conf import get_settings
from .exceptions import InvalidNotification
from .models import Event
from .preferences import channels_for
from .roles import get_role_resolver
from .validation import json_data, saved_instance, text

_MAX_CHARS = 255


def notify(
    audience: Audience,
    verb: str,
    *,
    title: str = "",
    body: str = "",
    level: str = "info",
    actor: Model | None = None,
    target: Model | None = None,
    data: dict[str, Any] | None = None,
    key: str | None = None,
    channels: list[str] | tuple[str, ...] | None = None,
) -> Event:
    """Record an Event for ``audience`` and hand it to the backend after commit.

    The call writes one row, whatever the size of the audience; the audience
    is resolved later, by the worker.

    Parameters:
        audience: who to notify, an :class:`~offchat_notify.Audience`.
        verb: what happened, for example ``"message.sent"``.
        title: a short line the recipients read (at most 255 characters).
        body: longer text, if any.
        level: ``debug``, ``info``, ``success``, ``warning`` or ``error``.
        actor: the user who caused the Event, if any.
        target: the model instance the Event is about, if any.
        data: extra JSON-serialisable values for templates and clients.
        key: an idempotency key. A second call with the same key does nothing
            and returns the first Event.
        channels: the channels besides the inbox (``"email"``, ``"webpush"``);
            ``None``: the verb's default, ``OFFCHAT_NOTIFY["CHANNELS_BY_VERB"]``.
            Each recipient gets them unless they muted them (see
            :doc:`/channels`).

    Returns:
        The :class:`~offchat_notify.models.Event`. With a worker backend it is
        ``pending``. With a backend that delivers in this process (``sync``,
        ``eager``) and no transaction open, it has been delivered by the time
        ``notify()`` returns, and says so (``state``, ``recipient_count``,
        ``delivered_at``...); inside ``atomic()`` it is ``pending`` until the
        transaction commits, and is brought up to date then.

    Raises:
        InvalidNotification: an argument is wrong; nothing was written.
        UnknownRole: the audience names a role that does not exist.
    """
    fields = _validated_fields(
        verb=verb, title=title, body=body, level=level, actor=actor, target=target, data=data
    )
    if not isinstance(audience, Audience):
        raise InvalidNotification(
            f"audience must be an Audience (Audience.users(...), Audience.role(...)), "
            f"not {type(audience).__name__}."
        )
    if key is not None and (not isinstance(key, str) or not key or len(key) > _MAX_CHARS):
        raise InvalidNotification("key must be a non-empty string of at most 255 characters.")
    if key is not None:
        text("key", key)
    fields["channels"] = channels_for(fields["verb"], channels)
    backend = get_backend()
    audience.validate(get_role_resolver())

    if key is not None:
        existing = Event.objects.filter(key=key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic(using=router.db_for_write(Event)):
                event = Event.objects.insert(Event(audience=audience.spec, key=key, **fields))
        except IntegrityError:
            existing = Event.objects.filter(key=key).first()
            if existing is None:
                raise
            return existing
    else:
        event = Event.objects.insert(Event(audience=audience.spec, **fields))

    event_id = event.pk

    def hand_off() -> None:
        backend.after_commit(event_id)
        if not backend.runs_in_worker:  # delivered here and now: the Event says so
            _refresh_state(event)

    transaction.on_commit(hand_off, using=router.db_for_write(Event))
    return event


#: The fields a delivery changes, read back after an in-process delivery.
_STATE_FIELDS = (
    "state",
    "attempts",
    "failures",
    "recipient_count",
    "skipped_count",
    "last_error",
    "updated_at",
    "started_at",
    "delivered_at",
    "duration_ms",
)


def _refresh_state(event: Event) -> None:
    """Bring ``event`` up to date with what its delivery wrote (one query)."""
    try:
        row = Event.objects.filter(pk=event.pk).values(*_STATE_FIELDS).first()
    except DatabaseError:  # the delivery is recorded; only this copy stays behind
        return
    for name, value in (row or {}).items():
        setattr(event, name, value)


def notify_admins(verb: str, *, exclude: Any = None, **fields: Any) -> Event:
    """Notify everyone holding the admin role (``OFFCHAT_NOTIFY["ADMIN_ROLE"]``).

    ``exclude`` leaves out a user (or users, or primary keys): typically the
    admin who caused the Event. The other keyword arguments are ``notify()``'s.
    """
    audience = Audience.role(get_settings().ADMIN_ROLE)
    if exclude is not None:
        audience = audience.exclude(exclude)
    return notify(audience, verb, **fields)


def send_bulk_notification(
    verb: str,
    *,
    user_ids: Iterable[Any] | None = None,
    role: str | None = None,
    **fields: Any,
) -> Event:
    """Notify a list of users or a role: exactly one of ``user_ids`` and ``role``."""
    if (user_ids is None) == (role is None):
        raise InvalidNotification(
            "send_bulk_notification() takes exactly one of user_ids= and role=, "
            f"got {'both' if role is not None else 'neither'}."
        )
    audience = Audience.users(user_ids) if user_ids is not None else Audience.role(role)  # type: ignore[arg-type]
    return notify(audience, verb, **fields)


def _validated_fields(
    *,
    verb: Any,
    title: Any,
    body: Any,
    level: Any,
    actor: Any,
    target: Any,
    data: Any,
) -> dict[str, Any]:
    if not isinstance(verb, str) or not verb.strip():
        raise InvalidNotification(f"verb must be a non-empty string, not {verb!r}.")
    verb = text("verb", verb, max_length=_MAX_CHARS)
    fields: dict[str, Any] = {
        "verb": verb,
        "title": text("title", title, max_length=_MAX_CHARS),
        "body": text("body", body, lines=True),
        "level": level,
        "data": json_data(data),
    }
    if level not in Event.Level.values:
        raise InvalidNotification(
            f"level must be one of {', '.join(Event.Level.values)}, not {level!r}."
        )
    if actor is not None:
        fields["actor"] = saved_instance("actor", actor, get_user_model())
    if target is not None:
        saved_instance("target", target)
        fields["target_content_type"] = ContentType.objects.get_for_model(target)
        fields["target_object_id"] = str(target.pk)
    return fields
