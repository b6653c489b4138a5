"""The code paths compare.py puts beside offchat-notify's, and a RabbitMQ backend for it.

- ``celery_app`` and :func:`notify_admins_bulk`: the Celery way, a task sent
  with ``delay_on_commit`` that would bulk-create the wide rows in a worker.
  No Celery worker runs: the request path only pays for the send.
- :class:`RabbitBackend`: offchat-notify's own ``DramatiqBackend`` with the
  delivery actor bound to a RabbitMQ broker, so one process can time the
  dramatiq backend on Redis (django-dramatiq's global broker) and on RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery

from offchat_notify.backends.base import DELIVER
from offchat_notify.backends.dramatiq import DramatiqBackend

celery_app = Celery("offchat_bench", task_cls="celery.contrib.django.task:DjangoTask")


def configure_celery(redis_url: str, namespace: str) -> None:
    """Celery on the run's Redis, every key under ``namespace:celery:`` (deleted at the end)."""
    celery_app.conf.update(
        broker_url=redis_url,
        broker_transport_options={"global_keyprefix": f"{namespace}:celery:"},
        task_ignore_result=True,
        task_default_queue=f"{namespace}-celery",
        broker_connection_retry_on_startup=False,
    )


@celery_app.task(name="benchmarks.notify_admins_bulk")
def notify_admins_bulk(message_id: int, role: str) -> None:
    """What a Celery user would write: the admins' wide rows in one ``bulk_create``."""
    from benchmarks.chat.models import Message
    from benchmarks.variants import inline_bulk

    message = Message.objects.select_related("sender").get(pk=message_id)
    inline_bulk(message, message.sender, role)


def redeclare_delivery_actor(broker: Any) -> Any:
    """offchat-notify's delivery actor, declared a second time on ``broker`` (with
    the project's DRAMATIQ_BROKER middleware), for a backend that sends to it."""
    import dramatiq

    from offchat_notify.backends.dramatiq.actors import deliver_event

    return dramatiq.Actor(
        deliver_event.fn,
        broker=broker,
        actor_name=deliver_event.actor_name,
        queue_name=deliver_event.queue_name,
        priority=deliver_event.priority,
        options=dict(deliver_event.options),
    )


def broker_middleware() -> list[Any]:
    """The middleware of the project's DRAMATIQ_BROKER, built."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    return [import_string(path)() for path in settings.DRAMATIQ_BROKER["MIDDLEWARE"]]


_rabbit_actor: Any = None


def rabbit_actor() -> Any:
    """offchat-notify's delivery actor, declared a second time on a RabbitMQ broker."""
    global _rabbit_actor
    if _rabbit_actor is None:
        from django.conf import settings
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=settings.BENCH_RABBITMQ_URL, middleware=broker_middleware())
        _rabbit_actor = redeclare_delivery_actor(broker)
    return _rabbit_actor


class RabbitBackend(DramatiqBackend):
    """``OFFCHAT_NOTIFY["BACKEND"] = "benchmarks.peers.RabbitBackend"``: dramatiq on RabbitMQ.

    Only the delivery job (``deliver``) goes to RabbitMQ; the other jobs keep
    their actors on the global broker.
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.actors = {**self.actors, DELIVER: rabbit_actor()}
