"""The health endpoint, for load balancers and uptime checks.

Include it in the project's URLconf::

    path("notifications/", include("offchat_notify.urls")),

``GET .../health/`` answers 200 with ``{"status": "ok", ...}`` when the
database answers, the broker answers (dramatiq backend) and no Event has been
waiting longer than ``OFFCHAT_NOTIFY["HEALTH_MAX_AGE"]`` seconds; 503 with
``"status": "fail"`` otherwise. It shows counts and ages only: no hosts, URLs,
credentials or payloads.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, router
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from offchat_notify import metrics as notify_metrics
from offchat_notify.conf import get_settings
from offchat_notify.models import Event

from .status import broker_stats, oldest_pending_age


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {}
    healthy = True
    try:
        with connections[router.db_for_read(Event)].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        return JsonResponse({"status": "fail", "checks": checks}, status=503)

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
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503
    )


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this process's offchat-notify metrics (404 if not installed)."""
    if not notify_metrics.installed():
        raise Http404("prometheus-client is not installed")
    body, content_type = notify_metrics.exposition()
    return HttpResponse(body, content_type=content_type)
