"""``{% load offchat_notify %}``: the live inbox (unread badge and drop-down) in any template.

``{% notification_inbox %}`` renders the badge, the drop-down list and the
script that keeps them up to date. Hosts with markup of their own put
``{% notification_inbox_attrs %}`` on their element and add
``{% notification_inbox_script %}`` once. For an anonymous user all three
render nothing.

The URLs come from ``reverse()`` in the ``offchat_notify_inbox`` namespace,
so the include may be mounted under any prefix.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from offchat_notify.inbox.http import APP_NAME
from offchat_notify.inbox.views import unread_count

register = template.Library()

#: The script's path under STATIC_URL.
SCRIPT = "offchat_notify/inbox.js"
#: A pk no URL prefix holds, reversed then replaced by ``{id}`` for the script.
_PK = 918273645
#: How many items the drop-down shows, unless the tag says otherwise.
DEFAULT_LIMIT = 10
#: The most the list endpoint returns in one page.
MAX_LIMIT = 100


def _request(context: template.Context, tag: str) -> HttpRequest:
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured(
            f"{{% {tag} %}} needs the request in the template context: add "
            "'django.template.context_processors.request' to the context_processors of "
            "your TEMPLATES setting, and render with a request."
        )
    return request  # type: ignore[no-any-return]


def _logged_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def inbox_attributes(request: HttpRequest, *, limit: int = DEFAULT_LIMIT) -> dict[str, str]:
    """The ``data-*`` attributes the script reads: URLs, CSRF token, limit, unread count."""
    if not 1 <= limit <= MAX_LIMIT:
        raise template.TemplateSyntaxError(
            f"notification_inbox: limit must be between 1 and {MAX_LIMIT}, not {limit!r}"
        )
    read = reverse(f"{APP_NAME}:read", kwargs={"pk": _PK}).replace(str(_PK), "{id}")
    return {
        "data-offchat-inbox": "",
        "data-list-url": reverse(f"{APP_NAME}:list"),
        "data-unread-url": reverse(f"{APP_NAME}:unread"),
        "data-read-url": read,
        "data-read-all-url": reverse(f"{APP_NAME}:read_all"),
        "data-stream-url": reverse(f"{APP_NAME}:stream"),
        "data-csrf-token": get_token(request),
        "data-limit": str(limit),
        "data-unread": str(unread_count(request.user)),
    }


def _render_attributes(attributes: dict[str, str]) -> SafeString:
    return format_html_join(" ", '{}="{}"', attributes.items())


@register.inclusion_tag("offchat_notify/inbox.html", takes_context=True)
def notification_inbox(
    context: template.Context, page_url: str = "", limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """The unread badge, the drop-down list and the script, for the logged-in user.

    ``page_url``: a link at the bottom of the drop-down to the host's full
    inbox page (none if empty). ``limit``: how many items the drop-down shows.
    """
    request = _request(context, "notification_inbox")
    if not _logged_in(request):
        return {"show": False}
    attributes = inbox_attributes(request, limit=limit)
    unread = int(attributes["data-unread"])
    return {
        "show": True,
        "attributes": _render_attributes(attributes),
        "unread": unread,
        "page_url": page_url,
        "script": static(SCRIPT),
    }


@register.simple_tag(takes_context=True)
def notification_inbox_attrs(context: template.Context, limit: int = DEFAULT_LIMIT) -> str:
    """``data-*`` attributes for a host's own element: ``<nav {% notification_inbox_attrs %}>``.

    The script fills the parts it finds inside by their attributes
    (``data-offchat-badge``, ``-list``, ``-empty``, ``-toggle``, ``-panel``,
    ``-read-all``), each optional.
    """
    request = _request(context, "notification_inbox_attrs")
    if not _logged_in(request):
        return ""
    return _render_attributes(inbox_attributes(request, limit=limit))


@register.simple_tag(takes_context=True)
def notification_inbox_script(context: template.Context) -> str:
    """``<script defer src=".../offchat_notify/inbox.js">``: ``window.OffchatInbox``."""
    if not _logged_in(_request(context, "notification_inbox_script")):
        return ""
    return format_html('<script defer src="{}"></script>', static(SCRIPT))
