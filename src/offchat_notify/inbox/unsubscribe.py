"""``notifications/unsubscribe/<token>/``: RFC 8058 one-click unsubscribe, no login needed.

``GET`` (a person following the link) shows a small page with a button;
``POST`` (the button, or a mail client's one-click ``List-Unsubscribe=One-Click``)
mutes the channel for the verb the token names.

The view is ``csrf_exempt``, and may be: a mail client's one-click POST comes
from no page of this site and carries no CSRF token or cookie. The request is
authenticated by the token instead, signed with ``SECRET_KEY`` and expiring
(:mod:`offchat_notify.channels.unsubscribe`), and the only thing it can do is
mute one verb on one channel for the user it names: a forged cross-site POST
needs the token, which only the recipient's mailbox has. ``GET`` changes
nothing, so a link scanner that follows links cannot unsubscribe anyone.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from offchat_notify import preferences
from offchat_notify.channels.unsubscribe import BadToken, Unsubscribe, read_token
from offchat_notify.exceptions import InvalidNotification

TEMPLATE = "offchat_notify/unsubscribe.html"


@csrf_exempt  # authenticated by the signed token: see the module's docstring
@never_cache
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """Show the confirmation form (``GET``) or mute (``POST``)."""
    if request.method not in ("GET", "POST"):
        response = HttpResponse("Use GET or POST.", status=405, content_type="text/plain")
        response["Allow"] = "GET, POST"
        return response
    try:
        found = read_token(token)
        user = get_user_model()._default_manager.get(pk=found.user_id)
    except (BadToken, ValueError, get_user_model().DoesNotExist) as exc:
        message = str(exc) if isinstance(exc, BadToken) else "this unsubscribe link is not valid"
        return _page(request, None, message, status=400)
    if request.method == "GET":
        return _page(request, found, "")
    try:
        preferences.mute(user, found.channel, found.verb or None)
    except InvalidNotification as exc:  # a verb made mandatory since the email was sent
        return _page(request, found, str(exc), status=400)
    return _page(request, found, "", done=True)


def _page(
    request: HttpRequest,
    found: Unsubscribe | None,
    error: str,
    *,
    status: int = 200,
    done: bool = False,
) -> HttpResponse:
    context = {"found": found, "error": error, "done": done}
    return render(request, TEMPLATE, context, status=status)
