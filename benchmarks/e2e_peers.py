"""The stacks end_to_end.py compares, beside the library's own Redis broker.

- :class:`StockRedisBackend`: offchat-notify's ``DramatiqBackend`` with its
  delivery actor declared on dramatiq's stock ``RedisBroker`` (in the run's
  namespace + ``:stock``), so one sending process can feed a worker that runs
  on the stock broker (the baseline: an idle stock consumer polls with a
  backoff of up to 1 s).
- ``app``: the Celery app of the Celery worker (``celery -A
  benchmarks.e2e_peers:app worker``), with :func:`benchmarks.peers.notify_admins_bulk`,
  the task a Celery user writes (the admins' wide rows in one ``bulk_create``).
  Imported by the worker, this module configures Django from the run's
  environment first (services.child_env).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

if not settings.configured:  # the Celery worker process
    from benchmarks import services

    services.configure_from_env()

from benchmarks import peers  # noqa: E402
from offchat_notify.backends.base import DELIVER  # noqa: E402
from offchat_notify.backends.dramatiq import DramatiqBackend  # noqa: E402

STOCK_BROKER = "dramatiq.brokers.redis.RedisBroker"

app = peers.celery_app
if app.conf.task_default_queue == "celery":  # not configured yet (the worker)
    _options = settings.DRAMATIQ_BROKER["OPTIONS"]
    peers.configure_celery(_options["url"], _options["namespace"])


def stock_namespace(namespace: str) -> str:
    return f"{namespace}:stock"


_stock_actor: Any = None


def stock_actor() -> Any:
    """offchat-notify's delivery actor, declared a second time on dramatiq's stock RedisBroker."""
    global _stock_actor
    if _stock_actor is None:
        from dramatiq.brokers.redis import RedisBroker

        options = settings.DRAMATIQ_BROKER["OPTIONS"]
        broker = RedisBroker(
            url=options["url"],
            namespace=stock_namespace(options["namespace"]),
            middleware=peers.broker_middleware(),
        )
        _stock_actor = peers.redeclare_delivery_actor(broker)
    return _stock_actor


class StockRedisBackend(DramatiqBackend):
    """``OFFCHAT_NOTIFY["BACKEND"] = "benchmarks.e2e_peers.StockRedisBackend"``."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.actors = {**self.actors, DELIVER: stock_actor()}
