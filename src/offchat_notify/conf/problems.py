"""What is wrong with an ``OFFCHAT_NOTIFY`` value, as checks and exceptions report it."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from .defaults import (
    _LOCK_SCHEMES,
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
    for key in ("PAGE_SIZE", "MAX_ATTEMPTS", "RELAY_BATCH", "STREAM_MAX_PER_USER", "STREAM_REPLAY"):
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
