"""notify_status --json tells the truth while a 100,000-recipient fan-out runs."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.core.management import call_command

from offchat_notify import notify_admins
from offchat_notify.models import Event, Notification
from tests.helpers import bulk_users, wait_for, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]

SETTINGS = {"BACKEND": "dramatiq", "PARALLEL_CHUNK": None, "PAGE_SIZE": 1000}


def status() -> dict:
    out = StringIO()
    call_command("notify_status", json=True, stdout=out)
    return json.loads(out.getvalue())


def test_status_reports_true_figures_during_a_large_fan_out(
    postgres, redis_broker, start_worker, settings
):
    # Given 100,000 admins and a worker on Redis
    settings.OFFCHAT_NOTIFY = SETTINGS
    bulk_users(100_000, group="admin")
    worker = start_worker("redis", env=worker_env(**SETTINGS)).wait_ready()
    before = status()
    assert before["events"]["delivering"] == 0
    # When one Event fans out to all of them
    event = notify_admins("message.sent")
    seen: list[tuple[int, int, int]] = []  # (reported, true count just before, just after)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        low = Notification.objects.filter(event=event).count()
        snapshot = status()
        high = Notification.objects.filter(event=event).count()
        if snapshot["events"]["delivered"] == 1:
            break
        for row in snapshot["in_progress"]:
            if row["id"] == event.pk:
                seen.append((row["written"], low, high))
        time.sleep(0.05)
    # Then, while it ran, every figure was the truth at the time it was read
    assert seen, f"never saw the delivery in progress. Worker output:\n{worker.output()}"
    assert any(0 < reported < 100_000 for reported, _, _ in seen)
    for reported, low, high in seen:
        assert low <= reported <= high
    assert [r for r, _, _ in seen] == sorted(r for r, _, _ in seen)
    # and at the end
    wait_for(
        lambda: Event.objects.filter(pk=event.pk, state=Event.State.DELIVERED).exists(),
        timeout=60,
        what="the delivery to finish",
    )
    after = status()
    assert after["events"]["delivered"] == 1
    assert after["in_progress"] == []
    assert after["delivered_recently"] == 100_000
    assert after["broker"]["reachable"] is True
    assert after["broker"]["queues"][0]["ready"] == 0
