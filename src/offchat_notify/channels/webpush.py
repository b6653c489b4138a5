"""The web push channel: one encrypted message per device of each recipient.

On pywebpush and py-vapid (the ``webpush`` extra). A batch loads its
recipients' :class:`~offchat_notify.models.PushSubscription` rows in one
query, builds one JSON payload per Event (``title``, ``body``, ``url``,
``tag``, ``verb``, ``id``; at most :data:`PAYLOAD_LIMIT` bytes, the body cut
to fit) and posts it to each device's push service, signed with the VAPID key
of ``WEBPUSH_VAPID_PRIVATE_KEY``.

Per device: 2xx is accepted; 404 and 410 mean the subscription is gone, and
it is deleted; 429, 5xx and connection errors are transient; any other answer
is permanent for that device. A send is ``sent`` when one of the user's
devices accepted it (its id: the push service's ``Location``), ``failed``
when none did and nothing was transient, else left pending for the retry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from django.core import checks
from django.utils import timezone

from offchat_notify.conf import get_settings
from offchat_notify.models import ChannelSend, Event, PushSubscription

from .email import Outcome

try:  # the ``webpush`` extra
    import requests
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid02
    from pywebpush import WebPushException, webpush

    INSTALLED = True
except ImportError:  # pragma: no cover - checked by offchat_notify.E018
    INSTALLED = False

#: The most bytes of JSON a message carries: one aes128gcm record of 4096
#: bytes (RFC 8291) less its header (86), tag (16) and padding delimiter (1).
PAYLOAD_LIMIT = 3993
#: Seconds to wait for a push service.
TIMEOUT = 10
E018 = "offchat_notify.E018"
W013 = "offchat_notify.W013"
_MISSING = "the webpush extra is not installed: pip install 'offchat-notify[webpush]'"


def load_vapid(private_key: str) -> Vapid02:
    """The VAPID key of ``private_key``: PEM, or base64url DER or raw 32 bytes.

    Raises:
        ValueError: not a P-256 private key.
    """
    key = private_key.strip()
    try:
        if key.startswith("-----BEGIN"):
            return Vapid02.from_pem(key.encode())
        return Vapid02.from_string(key)
    except Exception as exc:
        raise ValueError("not a P-256 private key (PEM, or base64url DER or raw)") from exc


def public_key(vapid: Vapid02) -> str:
    """The browser's ``applicationServerKey`` of ``vapid``: base64url, unpadded."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _target_url(event: Event) -> str | None:
    target = event.target
    url = getattr(target, "get_absolute_url", None)
    return str(url()) if target is not None and callable(url) else None


def _encoded(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def payload(event: Event, limit: int = PAYLOAD_LIMIT) -> bytes:
    """The JSON of ``event``'s message, at most ``limit`` bytes: the body is
    cut (ending in "…") to fit, then the URL and the title if they must be."""
    data: dict[str, Any] = {
        "title": event.title,
        "body": event.body,
        "url": _target_url(event),
        "tag": f"offchat-notify-{event.pk}",  # a repeat replaces, never doubles
        "verb": event.verb,
        "id": event.pk,
    }
    encoded = _encoded(data)
    for field in ("body", "url", "title"):
        if len(encoded) <= limit or not data[field]:
            continue
        if field == "url":  # a cut URL leads nowhere
            data["url"] = None
        else:  # the longest cut that fits, by bisection
            text, low, high = data[field], 0, len(data[field]) - 1
            while low < high:
                middle = (low + high + 1) // 2
                data[field] = text[:middle].rstrip() + "…"
                low, high = (middle, high) if len(_encoded(data)) <= limit else (low, middle - 1)
            data[field] = text[:low].rstrip() + "…" if low else ""
        encoded = _encoded(data)
    if len(encoded) > limit:
        raise ValueError(f"a push message cannot be made to fit in {limit} bytes")
    return encoded


def _push(
    subscription: PushSubscription, data: bytes, vapid: Vapid02, session: requests.Session
) -> tuple[str, str]:
    """Send to one device: ("ok", location), ("gone"|"transient"|"permanent", error)."""
    conf = get_settings()
    try:
        response = webpush(
            subscription.info(),
            data.decode(),
            vapid_private_key=vapid,
            vapid_claims={"sub": conf.WEBPUSH_VAPID_SUBJECT},  # a new dict: webpush adds aud
            ttl=conf.WEBPUSH_TTL,
            timeout=TIMEOUT,
            requests_session=session,
        )
    except WebPushException as exc:
        if exc.response is None:
            return "transient", f"WebPushException: {str(exc)[:200]}"
        status = exc.response.status_code
        text = f"push service answered {status}: {(exc.response.text or '')[:200].strip()}"
        if status in (404, 410):
            return "gone", text
        return ("transient" if status == 429 or status >= 500 else "permanent"), text
    except (requests.ConnectionError, requests.Timeout) as exc:
        return "transient", f"{type(exc).__name__}: cannot reach the push service"
    except Exception as exc:  # a subscription's keys that cannot be encrypted for
        return "permanent", f"{type(exc).__name__}: {str(exc)[:200]}"
    return "ok", str(getattr(response, "headers", {}).get("Location", ""))[:255]


def send_batch(
    sends: list[ChannelSend], before: Callable[[Outcome], None] | None = None
) -> Outcome:
    """Send one batch to every device of its recipients, each request after
    ``before(outcome so far)`` (the job's pacing and heartbeat)."""
    outcome = Outcome()
    conf = get_settings()
    if not INSTALLED:
        outcome.transient = _MISSING
        return outcome
    if not conf.WEBPUSH_VAPID_PRIVATE_KEY or not conf.WEBPUSH_VAPID_SUBJECT:
        outcome.transient = "WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT must be set"
        return outcome
    try:
        vapid = load_vapid(conf.WEBPUSH_VAPID_PRIVATE_KEY)
    except ValueError as exc:  # the message names no part of the key
        outcome.transient = f"WEBPUSH_VAPID_PRIVATE_KEY is {exc}"
        return outcome
    devices: dict[int, list[PushSubscription]] = {}
    users = {send.recipient_id for send in sends}
    for subscription in PushSubscription.objects.filter(user_id__in=users).order_by("id"):
        devices.setdefault(subscription.user_id, []).append(subscription)
    payloads: dict[int, bytes] = {}
    gone: list[int] = []
    used: list[int] = []
    with requests.Session() as session:
        session.max_redirects = 0  # a push service answers; it never sends the worker on
        for send in sends:
            mine = devices.get(send.recipient_id, [])
            if not mine:
                outcome.failed[send.pk] = "permanent: no push subscription"
                continue
            if send.event_id not in payloads:
                payloads[send.event_id] = payload(send.event)
            results = []
            for subscription in mine:
                if before is not None:
                    before(outcome)
                results.append(_push(subscription, payloads[send.event_id], vapid, session))
            gone += [s.pk for s, (kind, _) in zip(mine, results, strict=True) if kind == "gone"]
            used += [s.pk for s, (kind, _) in zip(mine, results, strict=True) if kind == "ok"]
            accepted = [info for kind, info in results if kind == "ok"]
            transient = [info for kind, info in results if kind == "transient"]
            if accepted:
                outcome.sent[send.pk] = accepted[0]
            elif transient:
                outcome.transient = transient[0]
            else:
                outcome.failed[send.pk] = "permanent: " + "; ".join(i for _, i in results)
    PushSubscription.objects.filter(pk__in=gone).delete()
    PushSubscription.objects.filter(pk__in=used).update(last_used_at=timezone.now())
    return outcome


def check_webpush(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E018: VAPID keys that are not keys, or missing where a verb uses web push;
    W013: some of the three settings given, not all."""
    try:
        conf = get_settings()
    except Exception:  # reported by check_settings
        return []
    used = any("webpush" in names for names in conf.CHANNELS_BY_VERB.values())
    private, public = conf.WEBPUSH_VAPID_PRIVATE_KEY, conf.WEBPUSH_VAPID_PUBLIC_KEY
    fix = "Generate a pair with `vapid --gen` and `vapid --applicationServerKey`; see Web push."
    if used and not INSTALLED:
        return [checks.Error(f"'webpush' is in CHANNELS_BY_VERB, but {_MISSING}.", id=E018)]
    given = [private, public, conf.WEBPUSH_VAPID_SUBJECT]
    if not (private and public and all(given)):
        missing = (
            "OFFCHAT_NOTIFY['WEBPUSH_VAPID_PRIVATE_KEY'], ['WEBPUSH_VAPID_PUBLIC_KEY'] and "
            "['WEBPUSH_VAPID_SUBJECT'] must all be set: web push sends nothing without them."
        )
        if used:
            return [checks.Error(missing, hint=fix, id=E018)]
        return [checks.Warning(missing, hint=fix, id=W013)] if any(given) else []
    if not INSTALLED:
        return []
    try:
        derived = public_key(load_vapid(private))
    except ValueError as exc:  # the message names no part of the key
        return [
            checks.Error(
                f"OFFCHAT_NOTIFY['WEBPUSH_VAPID_PRIVATE_KEY'] is {exc}.", hint=fix, id=E018
            )
        ]
    if public.strip().rstrip("=") != derived:
        return [
            checks.Error(
                "OFFCHAT_NOTIFY['WEBPUSH_VAPID_PUBLIC_KEY'] is not the public key of "
                "WEBPUSH_VAPID_PRIVATE_KEY (base64url of the uncompressed P-256 point): "
                "browsers would subscribe with a key push services refuse.",
                hint=fix,
                id=E018,
            )
        ]
    return []
