"""The inbox JSON API: the logged-in user's notifications, their unread count, marking read.

Mounted with ``path("notifications/", include("offchat_notify.inbox.urls"))``.
Every answer is JSON and never cached; anonymous requests get 401, POSTs need
Django's CSRF token. Each query is filtered by the logged-in user first, and
walks the inbox indexes of :class:`~offchat_notify.models.Notification`
(``offchat_inbox_idx`` on (recipient, -id), the partial ``offchat_unread_idx``),
so a page and a count cost the same whatever the size of the table.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from offchat_notify.models import Notification, NotificationQuerySet

from . import cursor
from .http import endpoint, error
from .items import item, items


def inbox(user: Any) -> NotificationQuerySet:
    """``user``'s notifications, newest first, with what an item shows: every view starts here."""
    return Notification.objects.for_user(user).with_event()


def unread_count(user: Any) -> int:
    """How many of ``user``'s notifications are unread: one count on the partial index."""
    return Notification.objects.for_user(user).unread().count()


def page_queryset(user: Any, page: cursor.PageRequest) -> NotificationQuerySet:
    """The rows of one page, plus one to tell whether another page follows.

    Keyset pagination: ``id < cursor`` on ``offchat_inbox_idx``, never an
    OFFSET, so a late page costs what the first does.
    """
    qs = inbox(user)
    if page.unread_only:
        qs = qs.unread()
    if page.verbs:
        qs = qs.filter(event__verb__in=page.verbs)
    if page.before is not None:
        qs = qs.filter(id__lt=page.before)
    return qs[: page.limit + 1]


@endpoint("GET")
def notification_list(request: HttpRequest) -> JsonResponse:
    """``GET notifications/``: one page, newest first.

    ``{"results": [item, ...], "next": cursor or null, "unread": n}``. Query
    parameters: ``limit`` (1 to 100, default 20), ``cursor`` (the ``next`` of
    the previous page), ``unread=1`` (unread only), ``verb`` (repeatable: any
    of these verbs). A bad value answers 400 ``{"error": "..."}``.
    """
    try:
        page = cursor.page_request(request.GET)
    except cursor.BadParameter as exc:
        return error(str(exc), 400)
    rows = list(page_queryset(request.user, page))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return JsonResponse(
        {
            "results": items(rows),
            "next": cursor.encode(rows[-1].pk) if more else None,
            "unread": unread_count(request.user),
        }
    )


@endpoint("GET")
def unread(request: HttpRequest) -> JsonResponse:
    """``GET notifications/unread/``: ``{"unread": n}``."""
    return JsonResponse({"unread": unread_count(request.user)})


@endpoint("POST")
def mark_read(request: HttpRequest, pk: int) -> JsonResponse:
    """``POST notifications/<id>/read/``: mark one notification read.

    Answers the item with ``"unread"`` (the new count) added, the shape the
    stream sends; 404 when the id is not one of the user's notifications.
    Marking a read notification again changes nothing.
    """
    return _mark(request, pk, read=True)


@endpoint("POST")
def mark_unread(request: HttpRequest, pk: int) -> JsonResponse:
    """``POST notifications/<id>/unread/``: mark one notification unread again."""
    return _mark(request, pk, read=False)


@endpoint("POST")
def mark_all_read(request: HttpRequest) -> JsonResponse:
    """``POST notifications/read/``: mark all read; ``{"marked": n, "unread": count}``.

    ``unread`` is counted after the update: 0, unless a notification arrived
    meanwhile.
    """
    marked = Notification.objects.for_user(request.user).mark_read()
    return JsonResponse({"marked": marked, "unread": unread_count(request.user)})


def _mark(request: HttpRequest, pk: int, *, read: bool) -> JsonResponse:
    found = inbox(request.user).filter(pk=pk).first() if pk <= cursor.MAX_ID else None
    if found is None:
        return error(f"notification {pk} not found", 404)
    if read:
        found.mark_read()
    elif found.read_at is not None:
        Notification.objects.filter(pk=found.pk).mark_unread()
        found.read_at = None
    return JsonResponse({**item(found), "unread": unread_count(request.user)})
