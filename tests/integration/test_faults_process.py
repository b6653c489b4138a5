"""Fault injection: processes that die at the worst moment.

* the web process, between the commit of the Event and its enqueue;
* the worker, SIGKILLed in the middle of a 100,000-recipient fan-out.

Recovery comes from the idempotent delivery and from whoever sends the Event
again first: the relay (run here every second; in production, the periodic
job), once the Event has been pending past RELAY_AFTER or delivering without a
heartbeat past STUCK_AFTER; or, on RabbitMQ, the broker itself, which hands a
dead consumer's unacknowledged message to the next one at once. On Redis the
dead worker's message stays in its ack set until dramatiq's maintenance, a
random 0.1% of broker calls, finds its heartbeat a minute old.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection

from offchat_notify import notify_admins
from offchat_notify.models import Event, Notification
from offchat_notify.tasks import deliver_event
from tests.helpers import (
    ROOT,
    assert_exactly_once,
    bulk_users,
    redis_broker_at,
    relay_until,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.slow]

#: The deadlines the documentation recommends, and the relay interval of these tests.
STUCK_AFTER = 15
RELAY_INTERVAL = 1.0
#: The budget: a killed worker delays notifications by at most this much (DESIGN.md section 8).
RECOVERY_BOUND = 60

DIE_AFTER_COMMIT = textwrap.dedent(
    """
    import os
    import django
    django.setup()
    from django.db import transaction
    from offchat_notify import notify_admins

    with transaction.atomic():
        # Registered first, so it runs first: the process dies after the commit,
        # before the backend's on_commit hook can enqueue anything.
        transaction.on_commit(lambda: os._exit(17))
        event = notify_admins("message.sent", title="dies after commit")
        print(event.pk, flush=True)
    print("the backend's on_commit hook ran", flush=True)
    """
)


def test_a_process_that_dies_between_commit_and_enqueue_is_delivered_by_the_relay(
    postgres, redis_server, use_broker, start_worker, settings
):
    # Given admins, and a web process on a working broker
    settings.OFFCHAT_NOTIFY = {"BACKEND": "dramatiq", "RELAY_AFTER": 1}
    url = redis_server.url()
    broker = use_broker(redis_broker_at(url))
    admins = bulk_users(500, group="admin")

    # When that process commits an Event and dies before enqueueing it
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "TEST_BROKER": "redis",
        "REDIS_URL": url,
        "TEST_REDIS_NAMESPACE": django_settings.REDIS_NAMESPACE,
        "OFFCHAT_WORKER_DATABASE": connection.settings_dict["NAME"],
        **worker_env(BACKEND="dramatiq"),
    }
    web = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_COMMIT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert web.returncode == 17, web.stdout + web.stderr
    assert "on_commit hook ran" not in web.stdout
    event_id = int(web.stdout.split()[0])

    # Then the Event is committed, pending, and the broker never heard of it
    assert Event.objects.get(pk=event_id).state == Event.State.PENDING
    assert broker.do_qsize(deliver_event.queue_name) == 0

    # And once a worker runs and the relay passes, it is delivered exactly once
    worker = start_worker("redis", env=worker_env(redis_url=url))
    relay_until(
        lambda: Event.objects.filter(pk=event_id, state=Event.State.DELIVERED).exists(),
        timeout=60,
        what=f"event {event_id} to be delivered",
        on_fail=worker.output,
    )
    assert_exactly_once([event_id], admins)


def rows(event_id: int) -> int:
    return Notification.objects.filter(event_id=event_id).count()


def broker_for_test(request: pytest.FixtureRequest, broker: str) -> dict[str, str]:
    """Set up the test's side of ``broker``; return what the workers need to know."""
    if broker == "redis":
        url = request.getfixturevalue("redis_server").url()
        request.getfixturevalue("use_broker")(redis_broker_at(url))
        return {"redis_url": url}
    request.getfixturevalue("private_rabbitmq")
    return {"OPTIONS": {"QUEUE": request.getfixturevalue("private_queue")}}


@pytest.mark.parametrize(
    ("broker", "parallel_chunk"),
    [
        pytest.param("redis", None, marks=pytest.mark.redis, id="redis-one-job"),
        pytest.param("redis", 50_000, marks=pytest.mark.redis, id="redis-two-chunk-jobs"),
        pytest.param("rabbitmq", None, marks=pytest.mark.rabbitmq, id="rabbitmq-one-job"),
    ],
)
def test_a_worker_sigkilled_mid_fanout_is_recovered_exactly_once_within_60_seconds(
    request, postgres, start_worker, settings, broker, parallel_chunk
):
    # Given 100,000 admins and a worker fanning out one Event to them, in one job
    # or (the default PARALLEL_CHUNK) in two chunk jobs running side by side
    notify_settings = {
        "BACKEND": "dramatiq",
        "STUCK_AFTER": STUCK_AFTER,
        "PARALLEL_CHUNK": parallel_chunk,
        "PAGE_SIZE": 1000,  # pages small enough that the kill lands mid-fan-out
    }
    settings.OFFCHAT_NOTIFY = notify_settings
    where = broker_for_test(request, broker)
    admins = bulk_users(100_000, group="admin")
    env = worker_env(**where, **notify_settings)
    first = start_worker(broker, env=env).wait_ready()
    event_id = notify_admins("message.sent", title="100,000 admins").pk
    wait_for(
        lambda: rows(event_id) >= 20_000,
        timeout=120,
        what="the fan-out to reach 20,000 rows",
        on_fail=first.output,
    )

    # When the worker is SIGKILLed in the middle of it
    first.kill()
    killed = time.monotonic()
    at_kill = rows(event_id)
    assert at_kill < 100_000, "the fan-out finished before the kill; nothing was tested"
    assert Event.objects.get(pk=event_id).state == Event.State.DELIVERING

    # And a worker runs again, with the relay running every second
    second = start_worker(broker, env=env).wait_ready()
    ready = time.monotonic() - killed
    relay_until(
        lambda: Event.objects.filter(pk=event_id, state=Event.State.DELIVERED).exists(),
        timeout=RECOVERY_BOUND + 60,  # fail with a measurement rather than a timeout
        interval=RELAY_INTERVAL,
        what=f"event {event_id} to be delivered",
        on_fail=second.output,
    )
    recovered = time.monotonic() - killed

    # Then exactly 100,000 rows, within 60 s of the kill (worker restart included)
    event = Event.objects.get(pk=event_id)
    print(
        f"\n{broker}: SIGKILL at {at_kill} rows; second worker ready after {ready:.1f} s; "
        f"delivered {recovered:.1f} s after the kill (STUCK_AFTER={STUCK_AFTER} s, relay every "
        f"{RELAY_INTERVAL:.0f} s, attempts={event.attempts}, last run {event.duration_ms} ms)"
    )
    assert_exactly_once([event_id], admins)
    assert event.recipient_count == 100_000
    assert recovered < RECOVERY_BOUND, f"recovery took {recovered:.1f} s"
