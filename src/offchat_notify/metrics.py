"""Prometheus metrics, when ``prometheus-client`` is installed; no-ops otherwise.

In workers, add ``"dramatiq.middleware.prometheus.Prometheus"`` to
``DRAMATIQ_BROKER["MIDDLEWARE"]``: dramatiq then serves its own metrics and
these (multiprocess mode) on port 9191 (``dramatiq_prom_port``). In web
processes, include ``offchat_notify.urls`` and scrape ``metrics/``.

=============================================  =========  =========================
name                                           type       labels
=============================================  =========  =========================
offchat_notify_events_dispatched_total         counter    backend (sync, eager, dramatiq)
offchat_notify_notifications_written_total     counter
offchat_notify_events_delivered_total          counter
offchat_notify_delivery_latency_seconds        histogram  (Event created to delivered)
offchat_notify_delivery_failures_total         counter    kind (transient, permanent)
offchat_notify_relay_resent_total              counter
=============================================  =========  =========================
"""

from __future__ import annotations

import os
import threading
from typing import Any

_metrics: dict[str, Any] | None = None
_lock = threading.Lock()


def _get() -> dict[str, Any]:
    """Create the metrics on first use, not at import.

    dramatiq's Prometheus middleware switches prometheus-client to
    multiprocess mode (PROMETHEUS_MULTIPROC_DIR) when a worker process boots,
    after Django has imported this module; metrics created before that would
    not be exported. Empty when prometheus-client is not installed.

    Worker threads (``rundramatiq --threads``) and the background sender
    race to the first use; the lock makes one of them create the metrics,
    since registering them twice raises.
    """
    if _metrics is not None:
        return _metrics
    with _lock:
        return _metrics if _metrics is not None else _create()


def _create() -> dict[str, Any]:
    global _metrics
    try:
        import prometheus_client
    except ImportError:  # optional
        _metrics = {}
        return _metrics
    _metrics = {
        "dispatched": prometheus_client.Counter(
            "offchat_notify_events_dispatched_total",
            "Events handed to the backend after commit.",
            ["backend"],
        ),
        "written": prometheus_client.Counter(
            "offchat_notify_notifications_written_total", "Notification rows written."
        ),
        "delivered": prometheus_client.Counter(
            "offchat_notify_events_delivered_total", "Events marked delivered."
        ),
        "latency": prometheus_client.Histogram(
            "offchat_notify_delivery_latency_seconds",
            "From the Event's creation to its delivery.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
        ),
        "failures": prometheus_client.Counter(
            "offchat_notify_delivery_failures_total", "Failed delivery attempts.", ["kind"]
        ),
        "resent": prometheus_client.Counter(
            "offchat_notify_relay_resent_total", "Events the relay sent again."
        ),
    }
    return _metrics


def installed() -> bool:
    return bool(_get())


def dispatched(backend: str) -> None:
    if m := _get():
        m["dispatched"].labels(backend=backend).inc()


def delivered(latency_seconds: float) -> None:
    if m := _get():
        m["delivered"].inc()
        m["latency"].observe(latency_seconds)


def written(rows: int) -> None:
    if (m := _get()) and rows:
        m["written"].inc(rows)


def failed(kind: str) -> None:
    if m := _get():
        m["failures"].labels(kind=kind).inc()


def resent(count: int) -> None:
    if (m := _get()) and count:
        m["resent"].inc(count)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process (or of all, in multiprocess mode) for a scrape."""
    if not installed():
        raise RuntimeError("prometheus-client is not installed: pip install prometheus-client")
    import prometheus_client

    registry = prometheus_client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
