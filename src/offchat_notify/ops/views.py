"""The health endpoint, for load balancers and uptime checks.

Include it in the project's URLconf::

    path("notifications/", include("offchat_notify.urls")),

``GET .../health/`` answers 200 with ``{"status": "ok", ...}`` when the
database answers, the broker answers (dramatiq backend) and no Event has been
waiting longer than ``OFFCHAT_NOTIFY["HEALTH_MAX_AGE"]`` seconds; 503 with
``"status": "fail"`` otherwise. It shows counts and ages only: no hosts, URLs,
credentials or payloads.

The answer is computed at most once every ``CACHE_SECONDS`` per process
(see :func:`cached_answer`), so a monitor polling every second, or several,
costs the database and the broker one round of queries every few seconds.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

from django.db import connections, router
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from offchat_notify import metrics as notify_metrics
from offchat_notify.conf import get_settings, settings_cache
from offchat_notify.models import Event

from .status import broker_stats, oldest_pending_age

#: How long one process reuses a health answer, in seconds.
CACHE_SECONDS = 5.0


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = 0.0
        self.answer: tuple[dict[str, Any], int] | None = None


@settings_cache
def _cache() -> _Cache:
    """This process's cached answer: a new, empty one whenever the settings change."""
    return _Cache()


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """200 or 503 with the checks, as computed at most ``CACHE_SECONDS`` ago.

    ``GET`` and ``HEAD`` (headers only); other methods get 405. The response
    itself is never cached downstream (``Cache-Control: max-age=0, no-cache...``).
    """
    body, status = cached_answer()
    return JsonResponse(body, status=status)


def cached_answer() -> tuple[dict[str, Any], int]:
    """The health answer (body, status code), computed at most once per
    ``CACHE_SECONDS`` in this process.

    A cache in this module's memory, not Django's cache framework, on
    purpose: the health check must not depend on a cache server (often the
    same Redis as the broker, so it would fail with what it checks, and a
    ``CACHES`` entry is not required by this app), and a per-process answer
    a few seconds old is what a monitor needs. It is emptied, like the other
    caches derived from the settings, when ``OFFCHAT_NOTIFY`` changes. The lock makes
    concurrent requests wait for one computation instead of each running
    the queries: a burst of probes costs one round, whatever the number of
    threads. Each process (gunicorn worker) computes its own answer.
    """
    cache = _cache()
    with cache.lock:
        now = monotonic()
        answer = cache.answer
        if answer is None or now - cache.at >= CACHE_SECONDS:
            answer = compute()
            cache.answer, cache.at = answer, now
        return answer


def compute() -> tuple[dict[str, Any], int]:
    """Run the checks now: the body and the status code of the answer."""
    checks: dict[str, Any] = {}
    healthy = True
    try:
        with connections[router.db_for_read(Event)].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        return {"status": "fail", "checks": checks}, 503

    broker = broker_stats(detail=False)
    if broker is None:
        checks["broker"] = "not used"
    else:
        checks["broker"] = "ok" if broker.reachable else "unreachable"
        healthy &= broker.reachable

    limit = get_settings().HEALTH_MAX_AGE
    age = oldest_pending_age()
    waiting = Event.objects.filter(
        state__in=(Event.State.PENDING, Event.State.QUEUED, Event.State.DELIVERING)
    ).count()
    backlog_ok = age is None or age <= limit
    checks["backlog"] = {
        "waiting": waiting,
        "oldest_age_s": None if age is None else round(age, 1),
        "max_age_s": limit,
        "status": "ok" if backlog_ok else "too old",
    }
    checks["failed"] = Event.objects.filter(state=Event.State.FAILED).count()
    healthy &= backlog_ok
    return {"status": "ok" if healthy else "fail", "checks": checks}, 200 if healthy else 503


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this process's offchat-notify metrics (404 if not installed)."""
    if not notify_metrics.installed():
        raise Http404("prometheus-client is not installed")
    body, content_type = notify_metrics.exposition()
    return HttpResponse(body, content_type=content_type)
