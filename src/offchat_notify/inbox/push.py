"""The web push endpoints: the VAPID public key, subscribe, unsubscribe.

``GET notifications/push/key/`` answers ``{"public_key": ...}``, the
``applicationServerKey`` of ``pushManager.subscribe()``. ``POST
notifications/push/subscribe/`` takes the browser's ``PushSubscription.toJSON()``
(``{"endpoint": "https://...", "keys": {"p256dh": ..., "auth": ...}}``) and
stores it for the logged-in user (201 new, 200 known; an endpoint another user
had moves to this one: a browser has one user at a time). ``POST
notifications/push/unsubscribe/`` takes ``{"endpoint": ...}`` and deletes the
user's subscription of that endpoint, if any. Bad bodies answer 400 with a
message; POSTs need Django's CSRF token, as every inbox POST.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, JsonResponse

from offchat_notify.conf import get_settings
from offchat_notify.models import PushSubscription
from offchat_notify.models.push import endpoint_digest

from .http import endpoint, error

MAX_BODY = 4096
MAX_ENDPOINT = 2000
#: Subscriptions kept per user (a browser profile each): a new one past this
#: deletes the user's oldest, so no account grows a list the worker posts to.
MAX_PER_USER = 20
#: Decoded sizes: an uncompressed P-256 point, and the auth secret (RFC 8291).
P256DH_BYTES = 65
AUTH_BYTES = 16


def _b64url(value: Any, name: str, size: int) -> str:
    """``value`` if it is base64url of ``size`` bytes (unpadded, as browsers give it)."""
    if not isinstance(value, str) or not value or len(value) > 2 * size:
        raise ValueError(f'"keys.{name}" must be a base64url string of {size} bytes')
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f'"keys.{name}" is not base64url') from None
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        raise ValueError(f'"keys.{name}" must decode to {size} bytes, not {len(raw)}')
    return value.rstrip("=")


def _endpoint(value: Any) -> str:
    """``value`` if it is a push service's URL: https, a host, at most 2000 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ENDPOINT:
        raise ValueError(f'"endpoint" must be a URL of at most {MAX_ENDPOINT} characters')
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError('"endpoint" must be an https:// URL of a push service') from None
    try:  # the worker posts to it: never to an address, only to a named service
        ipaddress.ip_address(host)
    except ValueError:
        if parts.scheme == "https" and "." in host and not any(c.isspace() for c in value):
            return value
        raise ValueError('"endpoint" must be an https:// URL of a push service') from None
    raise ValueError('"endpoint" must name its push service\'s host, not an IP address')


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY:
        raise ValueError(f"the body must be at most {MAX_BODY} bytes")
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


@endpoint("GET")
def key_view(request: HttpRequest) -> JsonResponse:
    """The VAPID public key, for the browser's ``applicationServerKey``."""
    key = get_settings().WEBPUSH_VAPID_PUBLIC_KEY
    if not key:
        return error("web push is not configured on this site", 404)
    return JsonResponse({"public_key": key.strip().rstrip("=")})


@endpoint("POST")
def subscribe_view(request: HttpRequest) -> JsonResponse:
    """Store (or move to this user) the browser's push subscription."""
    try:
        data = _body(request)
        url = _endpoint(data.get("endpoint"))
        keys = data.get("keys")
        if not isinstance(keys, dict):
            raise ValueError('"keys" must be an object {"p256dh": ..., "auth": ...}')
        p256dh = _b64url(keys.get("p256dh"), "p256dh", P256DH_BYTES)
        auth = _b64url(keys.get("auth"), "auth", AUTH_BYTES)
    except ValueError as exc:
        return error(str(exc), 400)
    subscription, created = PushSubscription.objects.update_or_create(
        endpoint_digest=endpoint_digest(url),
        defaults={
            "user": request.user,
            "endpoint": url,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": request.headers.get("User-Agent", "")[:255],
        },
    )
    if created:
        owner: Any = request.user
        mine = PushSubscription.objects.filter(user=owner).order_by("-created_at", "-id")
        old = list(mine.values_list("id", flat=True)[MAX_PER_USER:])
        PushSubscription.objects.filter(pk__in=old).delete()
    return JsonResponse({"id": subscription.pk, "created": created}, status=201 if created else 200)


@endpoint("POST")
def unsubscribe_view(request: HttpRequest) -> JsonResponse:
    """Delete the user's subscription of an endpoint (none: nothing to do)."""
    try:
        data = _body(request)
        url = data.get("endpoint")
        if not isinstance(url, str) or not url:
            raise ValueError('"endpoint" must be the subscription\'s endpoint URL')
    except ValueError as exc:
        return error(str(exc), 400)
    owner: Any = request.user
    deleted, _ = PushSubscription.objects.filter(
        user=owner, endpoint_digest=endpoint_digest(url)
    ).delete()
    return JsonResponse({"deleted": deleted})
