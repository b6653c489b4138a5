"""The request path side by side: a chat message save that notifies N admins, done every way.

Every call is a view under ``ATOMIC_REQUESTS``: ``transaction.atomic()``
around the ``Message`` save and the notifying code, commit and on-commit
callbacks included in the timed region. The ways (``KINDS``):

- ``bare``: the save alone, the baseline;
- ``loop`` / ``bulk``: the pattern offchat-notify replaces, inline
  (variants.py: one ``create`` per admin, or one ``bulk_create``);
- ``celery``: a bulk task sent with Celery's ``delay_on_commit`` on Redis (no
  Celery worker runs: only the send is on the request path);
- ``hq``: django-notifications-hq's ``notify.send`` to the admins' queryset;
- ``sync``, ``eager``, ``redis``, ``rabbitmq``: ``notify_admins()`` on
  offchat-notify's sync and eager backends, and on dramatiq with Redis and
  with RabbitMQ;
- ``redis_bg``: dramatiq on Redis with ``OPTIONS["DISPATCH"] = "background"``: the send
  happens in the library's sender thread. The timed region ends when the
  request would return; the send is then waited for outside it, so it never
  overlaps another variant's timed call.

Slow ways get fewer calls: untimed warm-up calls first measure each variant, then
its call count is its time budget divided by that cost, within bounds. All
variants run interleaved in one schedule: each round calls, in a shuffled
order, the bare save and the variants due in that round; a variant's calls are
spread evenly over the rounds, so slow and fast samples share the same noise.
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.variants import TEXT, VERB, inline_bulk, inline_loop

KINDS = {
    "bare": "bare save",
    "loop": "inline row-by-row create",
    "bulk": "inline bulk_create",
    "celery": "Celery delay_on_commit (Redis)",
    "hq": "django-notifications-hq notify.send",
    "sync": "offchat-notify sync",
    "eager": "offchat-notify eager",
    "redis": "offchat-notify dramatiq, Redis",
    "redis_bg": "offchat-notify dramatiq, Redis, DISPATCH background",
    "rabbitmq": "offchat-notify dramatiq, RabbitMQ",
}
BACKENDS = {"sync": "sync", "eager": "eager", "rabbitmq": "benchmarks.peers.RabbitBackend"}
#: Kinds that write one row per admin in the request, and where.
ROW_TABLES = {"loop": "inline", "bulk": "inline", "hq": "hq", "sync": "offchat", "eager": "offchat"}


@dataclass(eq=False)
class Variant:
    kind: str
    size: int | None  # admins notified; None for the bare save
    calls: int = 0  # all calls, untimed ones included
    iterations: int = 0
    cost: float = 0.0  # seconds per call, from the warm-up
    samples: list[float] = field(default_factory=list)

    @property
    def role(self) -> str:
        return f"admin-{self.size or 10}"

    def result(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": KINDS[self.kind],
            "size": self.size,
            "calls": self.calls,
            "samples": self.samples,
        }


@dataclass
class Plan:
    sizes: list[int]
    slow_sizes: list[int]  # sizes of the loop and hq variants
    budget: float  # seconds of timed calls per variant
    min_iterations: int
    max_iterations: int


class RequestPath:
    def __init__(self, plan: Plan, notify_base: dict[str, Any], seed: int) -> None:
        self.plan = plan
        self.notify_base = notify_base
        self.rng = random.Random(seed)
        self.bare = Variant("bare", None)
        self.variants = [self.bare] + [
            Variant(kind, size)
            for kind in KINDS
            if kind != "bare"
            for size in (plan.slow_sizes if kind in ("loop", "hq") else plan.sizes)
        ]

    def call(self, variant: Variant) -> float:
        """One request of ``variant``; returns its wall time in seconds.

        Settings switch (backend, ``ADMIN_ROLE``) outside the timed region,
        which also rebuilds the library's cached backend and role resolver;
        they and the role's existence check (cached 30 s in steady state) are
        warmed before the clock starts, as in request_path.py.
        """
        from django.contrib.auth.models import User
        from django.db import transaction
        from django.test import override_settings
        from notifications.signals import notify

        from benchmarks.chat.models import Message
        from benchmarks.peers import notify_admins_bulk
        from offchat_notify import notify_admins
        from offchat_notify.backends import get_backend
        from offchat_notify.backends.dramatiq.sender import flush
        from offchat_notify.roles import get_role_resolver

        kind, role, sender = variant.kind, variant.role, self.sender
        backend = BACKENDS.get(kind, "dramatiq")
        dispatch = "background" if kind == "redis_bg" else "inline"
        # QUEUE and DISPATCH are options of the dramatiq backends only: the
        # sync and eager backends take no OPTIONS.
        options = (
            {}
            if kind in ("sync", "eager")
            else {**self.notify_base.get("OPTIONS", {}), "DISPATCH": dispatch}
        )
        with override_settings(
            OFFCHAT_NOTIFY={
                **self.notify_base,
                "BACKEND": backend,
                "ADMIN_ROLE": role,
                "OPTIONS": options,
            }
        ):
            get_backend()
            get_role_resolver().validate(role)
            start = time.perf_counter()
            with transaction.atomic():
                message = Message.objects.create(sender=sender, text=TEXT)
                if kind == "loop":
                    inline_loop(message, sender, role)
                elif kind == "bulk":
                    inline_bulk(message, sender, role)
                elif kind == "celery":
                    notify_admins_bulk.delay_on_commit(message.pk, role)
                elif kind == "hq":
                    recipients = User.objects.filter(groups__name=role)
                    notify.send(sender, recipient=recipients, verb=VERB, target=message)
                elif kind != "bare":
                    title = f"New message from {sender.username}"
                    notify_admins(VERB, title=title, actor=sender, target=message)
            elapsed = time.perf_counter() - start
            if dispatch == "background" and not flush(30):
                raise RuntimeError("the background send did not finish within 30 s")
        variant.calls += 1
        return elapsed

    def run(self, log: Any) -> list[dict[str, Any]]:
        from django.contrib.auth.models import User

        from offchat_notify.backends import get_backend

        plan = self.plan
        self.sender = User.objects.get(username="sender")
        # The actors take their queue (OPTIONS["QUEUE"]) when first declared: declare
        # them now, under the run's settings, not under the eager variant's, which
        # has no OPTIONS.
        get_backend()
        # Warm-up: one call, a second one to measure the variant unless the first took
        # a second or more (the first opens connections); fast ones get ten more.
        for variant in self.variants:
            variant.cost = self.call(variant)
            if variant.cost < 1.0:
                variant.cost = self.call(variant)
            if variant.cost < 0.02:
                variant.cost = min(self.call(variant) for _ in range(10))
            wanted = round(plan.budget / max(variant.cost, 1e-6))
            variant.iterations = max(plan.min_iterations, min(plan.max_iterations, wanted))
        self.bare.iterations = max(v.iterations for v in self.variants)
        rounds = self.bare.iterations
        expected = sum(v.iterations * v.cost for v in self.variants)
        log(f"request path: {len(self.variants)} variants, {rounds} rounds (~{expected:.0f} s)")
        gc.collect()
        gc.freeze()
        for r in range(rounds):
            due = [v for v in self.variants if _due(r, v.iterations, rounds)]
            self.rng.shuffle(due)
            for variant in due:
                variant.samples.append(self.call(variant))
        gc.unfreeze()
        return [v.result() for v in self.variants]

    def checks(self, redis: Any, namespace: str, queue: str, rabbit_url: str) -> list[Any]:
        """[ok, text] pairs: every call wrote what it should, and nothing else did."""
        from notifications.models import Notification as HQNotification

        from benchmarks.chat.models import InlineNotification
        from offchat_notify.models import Event, Notification

        def rows(kinds: set[str]) -> int:
            return sum(v.calls * (v.size or 0) for v in self.variants if v.kind in kinds)

        def calls(kind: str) -> int:
            return sum(v.calls for v in self.variants if v.kind == kind)

        queued = redis.hlen(f"{namespace}:{queue}.msgs")
        celery = redis.llen(f"{namespace}:celery:{namespace}-celery")
        found = {
            "inline rows": (InlineNotification.objects.count(), rows({"loop", "bulk"})),
            "django-notifications-hq rows": (HQNotification.objects.count(), rows({"hq"})),
            "offchat-notify Notification rows (sync, eager)": (
                Notification.objects.count(),
                rows({"sync", "eager"}),
            ),
            "offchat-notify Events": (
                Event.objects.count(),
                sum(calls(k) for k in ("sync", "eager", "redis", "redis_bg", "rabbitmq")),
            ),
            "Events delivered in the request (sync, eager)": (
                Event.objects.filter(state=Event.State.DELIVERED).count(),
                calls("sync") + calls("eager"),
            ),
            "dramatiq messages in Redis": (queued, calls("redis") + calls("redis_bg")),
            "dramatiq messages in RabbitMQ": (_rabbit_depth(rabbit_url, queue), calls("rabbitmq")),
            "Celery messages in Redis": (celery, calls("celery")),
        }
        return [
            [got == want, f"request path: {name}: {got:,} (expected {want:,})"]
            for name, (got, want) in found.items()
        ]


def _due(r: int, n: int, rounds: int) -> bool:
    """Whether a variant of ``n`` calls runs in round ``r`` of ``rounds`` (evenly spread)."""
    return (r + 1) * n // rounds > r * n // rounds


def _rabbit_depth(url: str, queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        frame = connection.channel().queue_declare(queue, passive=True)
        return frame.method.message_count
    finally:
        connection.close()
