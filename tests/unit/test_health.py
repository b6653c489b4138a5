"""The health endpoint: cached for a few seconds per process, HEAD answered, docs true."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offchat_notify import Audience
from offchat_notify.models import Event
from offchat_notify.ops import views

from .test_docs import DOCS, read

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(views, "monotonic", clock)
    return clock


def waiting_event(users, age: float = 0) -> Event:
    event = Event.objects.create(verb="x", audience=Audience.users(users).spec)
    then = timezone.now() - timedelta(seconds=age)
    Event.objects.filter(pk=event.pk).update(created_at=then, updated_at=then)
    return event


def test_health_answers_from_its_cache_for_a_few_seconds(client, make_users, clock):
    users = make_users(1)
    waiting_event(users)
    url = reverse("offchat_notify:health")
    assert client.get(url).json()["checks"]["backlog"]["waiting"] == 1

    waiting_event(users)
    clock.now += views.CACHE_SECONDS - 0.5
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert len(queries) == 0
    assert response.json()["checks"]["backlog"]["waiting"] == 1  # the cached answer
    assert response["Cache-Control"].startswith("max-age=0")  # but never cached downstream

    clock.now += 1
    assert client.get(url).json()["checks"]["backlog"]["waiting"] == 2


def test_health_caches_a_failure_too_and_keeps_its_status_code(client, make_users, clock):
    from django.test import override_settings

    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "HEALTH_MAX_AGE": 60}):
        event = waiting_event(make_users(1), age=90)
        url = reverse("offchat_notify:health")
        assert client.get(url).status_code == 503
        Event.objects.filter(pk=event.pk).update(state=Event.State.DELIVERED)
        assert client.get(url).status_code == 503
        clock.now += views.CACHE_SECONDS + 0.1
        assert client.get(url).status_code == 200


def test_concurrent_health_requests_compute_the_answer_once(monkeypatch, clock):
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return {"status": "ok", "checks": {}}, 200

    monkeypatch.setattr(views, "compute", compute)
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(views.cached_answer())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert answers == [({"status": "ok", "checks": {}}, 200)] * 8


def test_health_answers_head_like_get_without_a_body(client):
    response = client.head(reverse("offchat_notify:health"))
    assert response.status_code == 200
    assert response.content == b""
    assert client.post(reverse("offchat_notify:health")).status_code == 405


def test_the_docs_describe_what_the_health_view_does():
    text = read(DOCS / "operations.rst")
    section = text.split(".. _operations-health:")[1].split(".. _operations-metrics:")[0]
    assert not re.search(r"HEAD[^.]*405", section)  # require_safe answers HEAD
    assert re.search(r"HEAD[^.]*200", section)
    assert "SCAN" not in section  # detail=False: no scan of the in-flight sets
    assert f"{views.CACHE_SECONDS:g} seconds" in section
    assert "Restricting access" in section
