"""The HTTP conventions of the inbox API: JSON errors, 401 for anonymous users, 405.

Every answer of the inbox views is JSON, including the errors, so a browser
client never has to parse an HTML error page or follow a redirect to a login
form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.cache import never_cache

#: The ``app_name`` of ``offchat_notify.inbox.urls``.
APP_NAME = "offchat_notify_inbox"

View = TypeVar("View", bound=Callable[..., HttpResponse])


def error(message: str, status: int, **headers: str) -> JsonResponse:
    """``{"error": message}`` with ``status``."""
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def endpoint(*methods: str) -> Callable[[View], View]:
    """Make a view an inbox endpoint: JSON only, the logged-in user only, never cached.

    The answer carries ``Cache-Control: max-age=0, no-cache, no-store,
    must-revalidate, private`` whatever its status. An anonymous request gets
    401 ``{"error": "authentication required"}`` (never a redirect to a login
    page); then a method other than ``methods`` gets 405 with an ``Allow``
    header. CSRF is left to Django's ``CsrfViewMiddleware``, as for any view.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return error("authentication required", 401)
            if request.method not in methods:
                return error(
                    f"method {request.method} is not allowed here; use {' or '.join(methods)}",
                    405,
                    Allow=", ".join(methods),
                )
            return view(request, *args, **kwargs)

        return never_cache(wrapper)  # type: ignore[return-value]

    return decorate


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure view, answering JSON for the inbox URLs.

    Opt in with ``CSRF_FAILURE_VIEW = "offchat_notify.inbox.http.csrf_failure"``.
    A request to a URL of ``offchat_notify.inbox.urls`` gets 403
    ``{"error": "CSRF verification failed: ..."}``; any other request gets
    Django's own page, unchanged.
    """
    match = request.resolver_match
    if match is None or APP_NAME not in match.app_names:
        return csrf.csrf_failure(request, reason)
    return error(
        f"CSRF verification failed: {reason or 'no reason given'}. Send the value of the "
        "csrftoken cookie in an X-CSRFToken header, from a page of this site",
        403,
    )
