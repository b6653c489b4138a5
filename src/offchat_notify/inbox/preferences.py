"""``GET``/``POST notifications/preferences/``: the logged-in user's mutes, as JSON.

``GET`` answers ``{"channels": [...], "mutes": [{"channel", "verb"}, ...],
"mandatory": [...]}`` for a settings page. ``POST`` takes a JSON body
``{"channel": "email", "verb": "comment.posted" | null, "muted": true | false}``
(``verb`` null: every verb on the channel) and answers like ``GET``. A bad
body answers 400 with a message; muting a mandatory verb too. POSTs need
Django's CSRF token, as every inbox POST.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse

from offchat_notify import preferences
from offchat_notify.exceptions import InvalidNotification

from .http import endpoint, error

MAX_BODY = 4096


def state(user: Any) -> dict[str, Any]:
    """What ``GET`` answers for ``user``."""
    return {
        "channels": list(preferences.CHANNELS),
        "mutes": preferences.mutes(user),
        "mandatory": preferences.mandatory_verbs(),
    }


@endpoint("GET", "POST")
def preference_view(request: HttpRequest) -> JsonResponse:
    """List the user's mutes (``GET``), or mute or unmute one (``POST``)."""
    if request.method == "POST":
        try:
            channel, verb, muted = _change(request.body)
            if muted:
                preferences.mute(request.user, channel, verb)
            else:
                preferences.unmute(request.user, channel, verb)
        except (ValueError, InvalidNotification) as exc:
            return error(str(exc), 400)
    return JsonResponse(state(request.user))


def _change(body: bytes) -> tuple[str, str | None, bool]:
    """The (channel, verb, muted) of a POST body; ValueError with a message if malformed."""
    if len(body) > MAX_BODY:
        raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict) or set(data) - {"channel", "verb", "muted"}:
        raise ValueError(
            'the body must be a JSON object {"channel": ..., "verb": ... or null, '
            '"muted": true or false} and nothing else'
        )
    muted = data.get("muted")
    if not isinstance(muted, bool):
        raise ValueError(f'"muted" must be true or false, not {muted!r}')
    return preferences.check_channel(data.get("channel")), data.get("verb"), muted
