"""The request side: validate, write one Event, dispatch it after commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, router, transaction
from django.db.models import Model

from .audience import Audience
from .backends import get_backend
from .conf import get_settings
from .exceptions import InvalidNotification
from .models import Event
from .roles import get_role_resolver

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

    Returns:
        The :class:`~offchat_notify.models.Event`, state ``pending``.

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

    transaction.on_commit(lambda: backend.after_commit(event_id), using=router.db_for_write(Event))
    return event


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
    for name, value in (("verb", verb), ("title", title)):
        if not isinstance(value, str) or len(value) > _MAX_CHARS:
            raise InvalidNotification(f"{name} must be a string of at most 255 characters.")
    if not isinstance(body, str):
        raise InvalidNotification(f"body must be a string, not {type(body).__name__}.")
    if level not in Event.Level.values:
        raise InvalidNotification(
            f"level must be one of {', '.join(Event.Level.values)}, not {level!r}."
        )
    fields: dict[str, Any] = {
        "verb": verb,
        "title": title,
        "body": body,
        "level": level,
        "data": _json_data(data),
    }
    if actor is not None:
        user_model = get_user_model()
        if not isinstance(actor, user_model) or actor.pk is None:
            raise InvalidNotification(
                f"actor must be a saved {user_model._meta.label} instance or None, not {actor!r}."
            )
        fields["actor"] = actor
    if target is not None:
        if not isinstance(target, Model) or target.pk is None:
            raise InvalidNotification(
                f"target must be a saved model instance or None, not {target!r}."
            )
        fields["target_content_type"] = ContentType.objects.get_for_model(target)
        fields["target_object_id"] = str(target.pk)
    return fields


def _json_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidNotification(f"data must be a dict, not {type(data).__name__}.")
    _check_json(data, "data")
    return data


def _check_json(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidNotification(
                    f"{path} has a non-string key {k!r}; JSON keys are strings."
                )
            _check_json(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidNotification(f"{path} is {value!r}, which JSON cannot represent.")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise InvalidNotification(
            f"{path} is a {type(value).__name__}, which is not JSON-serialisable. "
            "Convert it first (for example str() for dates and UUIDs)."
        )
