"""What is wrong with an ``OFFCHAT_NOTIFY`` value, as checks and exceptions report it."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any
from urllib.parse import urlsplit

from .defaults import (
    _LOCK_SCHEMES,
    CHANNEL_NAMES,
    DEFAULTS,
    LIVE_TRANSPORTS,
    MAX_SECONDS,
    RENAMED,
    SECONDS,
    SETTING_NAME,
    _merged,
    _redacted,
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, as a check and an exception report it."""

    id: str
    key: str
    msg: str
    hint: str

    def __str__(self) -> str:
        return f"{SETTING_NAME}[{self.key!r}]: {self.msg} {self.hint}"


def find_problems(raw: Any) -> list[Problem]:
    """Return everything wrong with the shape and values of ``raw``.

    Importability of dotted paths is checked separately, by
    ``checks.py``, because importing belongs to the check run, not to here.
    """
    if not isinstance(raw, dict):
        return [
            Problem(
                "offchat_notify.E001",
                "",
                f"must be a dict, not {type(raw).__name__}.",
                'Write OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", ...}.',
            )
        ]
    problems = []
    for key in sorted(set(raw) - set(DEFAULTS) - set(RENAMED), key=str):
        close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        problems.append(
            Problem(
                "offchat_notify.E001",
                key,
                "is not a known setting.",
                f"{hint}Known keys: {', '.join(DEFAULTS)}.",
            )
        )
    merged = _merged(raw)

    def bad(key: str, msg: str, hint: str) -> None:
        problems.append(Problem("offchat_notify.E002", key, msg, hint))

    for key in ("BACKEND", "ROLE_RESOLVER", "ADMIN_ROLE", "SCHEDULER_LOCK_KEY"):
        if not isinstance(merged[key], str) or not merged[key]:
            bad(
                key,
                f"must be a non-empty string, not {merged[key]!r}.",
                f"Default: {DEFAULTS[key]!r}.",
            )
    for key in (
        "PAGE_SIZE",
        "MAX_ATTEMPTS",
        "RELAY_BATCH",
        "STREAM_MAX_PER_USER",
        "STREAM_REPLAY",
        "EMAIL_BATCH_SIZE",
        "EMAIL_UNSUBSCRIBE_DAYS",
        "WEBPUSH_BATCH_SIZE",
    ):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(key, f"must be a positive integer, not {value!r}.", f"Default: {DEFAULTS[key]}.")
    parallel = merged["PARALLEL_CHUNK"]
    if parallel is not None and (
        isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1
    ):
        bad(
            "PARALLEL_CHUNK",
            f"must be None or a positive integer, not {parallel!r}.",
            "None delivers every Event in one job; default 50000 recipients per job.",
        )
    lock_url = merged["SCHEDULER_LOCK_URL"]
    if lock_url is not None and not (
        isinstance(lock_url, str) and (lock_url == "" or lock_url.startswith(_LOCK_SCHEMES))
    ):
        bad(
            "SCHEDULER_LOCK_URL",
            f"must be a Redis URL ({', '.join(_LOCK_SCHEMES)}), '' or None, not "
            f"{_redacted(lock_url)}.",
            "None uses the Redis of DRAMATIQ_BROKER; '' runs the scheduler without a lock.",
        )
    problems.extend(_live_problems(merged))
    problems.extend(_email_problems(merged))
    problems.extend(_webpush_problems(merged))
    for key, least in SECONDS.items():
        value = merged[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not least <= value <= MAX_SECONDS
        ):
            bad(
                key,
                f"must be a number of seconds from {least:g} to {MAX_SECONDS:,}, not {value!r}.",
                f"Default: {DEFAULTS[key]}.",
            )
    days = merged["RETENTION_DAYS"]
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        bad(
            "RETENTION_DAYS",
            f"must be None or a positive integer, not {days!r}.",
            "None keeps notifications forever.",
        )
    if not isinstance(merged["RAISE_RULE_ERRORS"], bool):
        bad(
            "RAISE_RULE_ERRORS",
            f"must be True or False, not {merged['RAISE_RULE_ERRORS']!r}.",
            "Default: False.",
        )
    mandatory = merged["MANDATORY_VERBS"]
    if not isinstance(mandatory, (list, tuple)) or not all(
        isinstance(v, str) and v for v in mandatory
    ):
        bad(
            "MANDATORY_VERBS",
            f"must be a list of verbs (non-empty strings), not {mandatory!r}.",
            'Default: []. Example: ["account.password_changed"].',
        )
    by_verb = merged["CHANNELS_BY_VERB"]
    if not isinstance(by_verb, dict) or not all(
        isinstance(verb, str)
        and verb
        and isinstance(names, (list, tuple))
        and all(name in CHANNEL_NAMES for name in names)
        for verb, names in by_verb.items()
    ):
        bad(
            "CHANNELS_BY_VERB",
            f"must be a dict of verb to a list of channels ({', '.join(CHANNEL_NAMES)}), "
            f"not {by_verb!r}.",
            'Default: {}. Example: {"comment.posted": ["email"]}.',
        )
    for key in ("OPTIONS", "ROLE_RESOLVER_OPTIONS", "SCHEDULE"):
        if not isinstance(merged[key], dict):
            bad(key, f"must be a dict, not {type(merged[key]).__name__}.", "Default: {}.")
    return problems


def _live_problems(merged: dict[str, Any]) -> list[Problem]:
    """LIVE, LIVE_REDIS_URL and LIVE_CHANNEL: the live stream's transport."""
    problems = []
    live = merged["LIVE"]
    if live is not None and live not in LIVE_TRANSPORTS:
        problems.append(
            Problem(
                "offchat_notify.E002",
                "LIVE",
                f"must be one of {', '.join(map(repr, LIVE_TRANSPORTS))} or None, not {live!r}.",
                "Default 'auto': Redis when the broker is Redis or LIVE_REDIS_URL is set, "
                "else PostgreSQL LISTEN/NOTIFY, else in-process; None turns the stream off.",
            )
        )
    url = merged["LIVE_REDIS_URL"]
    if url is not None and not (isinstance(url, str) and url.startswith(_LOCK_SCHEMES)):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "LIVE_REDIS_URL",
                f"must be a Redis URL ({', '.join(_LOCK_SCHEMES)}) or None, not {_redacted(url)}.",
                "None uses the Redis of DRAMATIQ_BROKER when it is Redis.",
            )
        )
    channel = merged["LIVE_CHANNEL"]
    # PostgreSQL cuts identifiers at 63 bytes; LISTEN and pg_notify would disagree.
    if not (isinstance(channel, str) and 0 < len(channel.encode()) <= 63 and "\0" not in channel):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "LIVE_CHANNEL",
                f"must be a non-empty string of at most 63 bytes, not {channel!r}.",
                f"Default: {DEFAULTS['LIVE_CHANNEL']!r}. Give each site sharing a Redis or a "
                "database a channel of its own.",
            )
        )
    return problems


def _email_problems(merged: dict[str, Any]) -> list[Problem]:
    """EMAIL_RATE_LIMIT, EMAIL_LANGUAGE and EMAIL_SITE_URL."""
    problems = []
    rate = merged["EMAIL_RATE_LIMIT"]
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not math.isfinite(rate)
        or rate <= 0
    ):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "EMAIL_RATE_LIMIT",
                f"must be None or a positive number of messages per second, not {rate!r}.",
                "None sends as fast as the email backend takes them.",
            )
        )
    language = merged["EMAIL_LANGUAGE"]
    if language is not None and not (isinstance(language, str) and language):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "EMAIL_LANGUAGE",
                f"must be None, a user attribute name or a dotted path, not {language!r}.",
                "None renders every email in LANGUAGE_CODE.",
            )
        )
    site = merged["EMAIL_SITE_URL"]
    if site is not None and not _is_site_url(site):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "EMAIL_SITE_URL",
                f"must be None or the site's absolute base URL (https://...), not {site!r}.",
                'Such as "https://chat.example.com": it prefixes the unsubscribe links of '
                "emails; None leaves them out.",
            )
        )
    return problems


def _is_site_url(value: Any) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host, no query, no
    fragment and no whitespace: a base the unsubscribe paths can follow."""
    if not isinstance(value, str) or any(c.isspace() or not c.isprintable() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
        and value.startswith(f"{parts.scheme}://")
    )


def _webpush_problems(merged: dict[str, Any]) -> list[Problem]:
    """WEBPUSH_*: their shapes (whether the keys are keys: the check E018). Keys
    are never shown in a message."""
    problems = []
    for key in ("WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_PUBLIC_KEY"):
        value = merged[key]
        if value is not None and not (isinstance(value, str) and value.strip()):
            problems.append(
                Problem(
                    "offchat_notify.E002",
                    key,
                    f"must be None or a non-empty string, not a {type(value).__name__}.",
                    "Generate a key pair with `vapid --gen` (docs: Web push).",
                )
            )
    subject = merged["WEBPUSH_VAPID_SUBJECT"]
    if subject is not None and not (
        isinstance(subject, str)
        and subject.startswith(("mailto:", "https://"))
        and len(subject) > 8
        and not any(c.isspace() for c in subject)
    ):
        problems.append(
            Problem(
                "offchat_notify.E002",
                "WEBPUSH_VAPID_SUBJECT",
                f"must be None or a mailto: or https: URL, not {subject!r}.",
                'Push services contact it about your messages: "mailto:ops@example.com".',
            )
        )
    ttl = merged["WEBPUSH_TTL"]
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 28 * 24 * 3600:
        problems.append(
            Problem(
                "offchat_notify.E002",
                "WEBPUSH_TTL",
                f"must be a number of seconds from 0 to 2419200 (28 days), not {ttl!r}.",
                "How long a push service keeps a message for an offline device. Default: 86400.",
            )
        )
    return problems
