"""Operations: notify_status, notify_doctor, the health endpoint, metrics, the admin overview."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from offchat_notify import Audience
from offchat_notify.delivery import deliver
from offchat_notify.models import Event, JobRun
from offchat_notify.schedule.runs import run_job

pytestmark = pytest.mark.django_db


def make_event(users, *, state=Event.State.PENDING, age: float = 0) -> Event:
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec, state=state)
    then = timezone.now() - timedelta(seconds=age)
    Event.objects.filter(pk=event.pk).update(created_at=then, updated_at=then)
    return event


def status_json() -> dict:
    out = StringIO()
    call_command("notify_status", json=True, stdout=out)
    return json.loads(out.getvalue())


def test_status_counts_events_by_state_and_the_oldest_waiting(make_users):
    users = make_users(3)
    deliver(make_event(users).pk)
    make_event(users, age=30)
    make_event(users, state=Event.State.FAILED)
    status = status_json()
    assert status["events"] == {
        "pending": 1,
        "queued": 0,
        "delivering": 0,
        "delivered": 1,
        "failed": 1,
    }
    assert 29 <= status["oldest_pending_age"] < 60
    assert status["delivered_recently"] == 3
    assert status["broker"] is None  # the sync backend uses none
    assert status["backend"] == "sync"


def test_status_shows_deliveries_in_progress_with_rows_written(make_users):
    from offchat_notify.models import Notification

    users = make_users(4)
    event = make_event(users, state=Event.State.DELIVERING)
    Notification.objects.bulk_create([Notification(event=event, recipient=u) for u in users[:3]])
    (row,) = status_json()["in_progress"]
    assert (row["id"], row["written"]) == (event.pk, 3)


def test_status_lists_periodic_job_runs():
    run_job("relay")
    (job,) = status_json()["jobs"]
    assert (job["name"], job["runs"], job["last_error"]) == ("relay", 1, "")
    assert JobRun.objects.get(name="relay").last_duration_ms is not None


def test_status_human_output(make_users):
    make_event(make_users(1), age=12)
    out = StringIO()
    call_command("notify_status", stdout=out)
    text = out.getvalue()
    assert "Backend: sync" in text
    assert "Events: 1 pending, 0 queued, 0 delivering, 0 delivered, 0 failed" in text
    assert "oldest undelivered: 1" in text  # 12.x s
    assert "no periodic job has run yet" in text


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"})
def test_status_reads_the_redis_queues(redis_broker):
    status = status_json()
    assert status["broker"]["kind"] == "redis"
    assert status["broker"]["reachable"] is True
    (queue,) = status["broker"]["queues"]
    assert queue["name"] == "offchat_notify"
    assert (queue["ready"], queue["dead"]) == (0, 0)


def test_health_is_ok_with_a_fresh_backlog(client, make_users):
    make_event(make_users(1), age=5)
    response = client.get(reverse("offchat_notify:health"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["backlog"]["waiting"] == 1
    assert body["checks"]["backlog"]["max_age_s"] == 300


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "HEALTH_MAX_AGE": 60})
def test_health_fails_when_an_event_waits_too_long(client, make_users):
    make_event(make_users(1), age=90)
    response = client.get(reverse("offchat_notify:health"))
    assert response.status_code == 503
    assert response.json()["checks"]["backlog"]["status"] == "too old"
    assert response["Cache-Control"].startswith("max-age=0")


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"})
def test_health_fails_and_tells_no_secrets_when_the_broker_is_down(
    client, redis_server, use_broker
):
    from dramatiq.brokers.redis import RedisBroker

    from tests.helpers import broker_middleware

    url = f"redis://:s3cret@127.0.0.1:{redis_server.port}/0"
    broker = use_broker(RedisBroker(url=url, middleware=broker_middleware()))
    redis_server.stop()
    response = client.get(reverse("offchat_notify:health"))
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unreachable"
    assert b"s3cret" not in response.content and b"127.0.0.1" not in response.content
    del broker


def test_doctor_fails_when_no_scheduler_holds_the_lock(redis_url):
    # With a backend whose jobs run in workers; with the sync backend a missing
    # scheduler is a warning (tests/unit/test_doctor.py).
    out = StringIO()
    lock = {"SCHEDULER_LOCK_URL": redis_url, "SCHEDULER_LOCK_KEY": f"test-{uuid.uuid4()}"}
    with (
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq", **lock}),
        pytest.raises(SystemExit) as exit_,
    ):
        call_command("notify_doctor", stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "[ok  ] migrations applied" in text
    assert "no scheduler is running" in text
    assert "fix: Start one: python manage.py notify_scheduler" in text


@override_settings(
    OFFCHAT_NOTIFY={"BACKEND": "dramatiq", "SCHEDULE": {"relay": None}, "SCHEDULER_LOCK_URL": ""}
)
def test_doctor_names_a_stopped_redis_and_how_to_start_it(redis_server, use_broker):
    from dramatiq.brokers.redis import RedisBroker

    from tests.helpers import broker_middleware

    use_broker(
        RedisBroker(url=f"redis://127.0.0.1:{redis_server.port}/0", middleware=broker_middleware())
    )
    redis_server.stop()
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("notify_doctor", stdout=out)
    text = out.getvalue()
    assert "[FAIL] the redis broker does not answer" in text
    assert "fix: Start it: sudo systemctl start redis-server" in text


def test_doctor_warns_about_a_scheduler_without_a_lock_and_exits_0_unless_strict():
    out = StringIO()
    call_command("notify_doctor", stdout=out)
    assert "[warn] the scheduler runs without a lock" in out.getvalue()
    with pytest.raises(SystemExit):
        call_command("notify_doctor", "--strict", stdout=StringIO())


def test_admin_overview_page(client, django_user_model, make_users):
    admin = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin)
    make_event(make_users(1), state=Event.State.FAILED)
    response = client.get(reverse("admin:offchat_notify_dashboard"))
    assert response.status_code == 200
    assert b"Notifications overview" in response.content
    assert b"?state__exact=failed" in response.content
    changelist = client.get(reverse("admin:offchat_notify_event_changelist"))
    assert reverse("admin:offchat_notify_dashboard").encode() in changelist.content


def test_metrics_count_dispatches_deliveries_and_resends(client, make_users):
    from prometheus_client import REGISTRY

    from offchat_notify import notify_admins

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    make_users(3, group="admin")
    before = (
        value("offchat_notify_events_dispatched_total", backend="sync"),
        value("offchat_notify_notifications_written_total"),
    )
    with django_capture_on_commit():
        notify_admins("x")
    assert value("offchat_notify_events_dispatched_total", backend="sync") == before[0] + 1
    assert value("offchat_notify_notifications_written_total") == before[1] + 3
    response = client.get(reverse("offchat_notify:metrics"))
    assert response.status_code == 200
    assert b"offchat_notify_delivery_latency_seconds_bucket" in response.content


def test_threads_racing_to_the_first_metric_create_the_metrics_once(monkeypatch):
    import threading
    import time

    import prometheus_client
    from prometheus_client import REGISTRY

    from offchat_notify import metrics

    class SlowCounter(prometheus_client.Counter):
        def __init__(self, *args, **kwargs):
            time.sleep(0.01)  # widen the window in which the threads overlap
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(prometheus_client, "Counter", SlowCounter)

    # Start from a process that has not created them yet.
    for metric in (metrics._metrics or {}).values():
        REGISTRY.unregister(metric)
    metrics._metrics = None
    barrier, errors = threading.Barrier(8), []

    def first_use():
        barrier.wait()
        try:
            metrics.written(1)
        except Exception as e:  # DuplicateTimeseries when two threads register
            errors.append(e)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert REGISTRY.get_sample_value("offchat_notify_notifications_written_total") == 8


def django_capture_on_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)
