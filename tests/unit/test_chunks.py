"""Parallel chunks: a large audience delivered as several jobs, still once per recipient."""

from __future__ import annotations

import pytest
from django.db.models import Count
from django.test import override_settings

from offchat_notify import Audience, notify
from offchat_notify.backends import get_backend
from offchat_notify.backends.base import BaseBackend
from offchat_notify.backends.jobs import run
from offchat_notify.delivery import deliver, deliver_chunk
from offchat_notify.models import DeliveryChunk, Event, Notification

pytestmark = pytest.mark.django_db(transaction=True)

CHUNKED = {"BACKEND": "sync", "PARALLEL_CHUNK": 10, "PAGE_SIZE": 4}


def recipients(event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


@override_settings(OFFCHAT_NOTIFY=CHUNKED)
def test_a_large_audience_is_split_into_chunks_and_delivered_once(make_users):
    admins = make_users(35, group="admin")
    make_users(5)
    event = notify(Audience.role("admin"), "x")
    event.refresh_from_db()
    assert recipients(event) == [u.pk for u in admins]
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 35)
    chunks = list(DeliveryChunk.objects.filter(event=event).order_by("index"))
    # The first job writes the first page (PAGE_SIZE 4) before it plans, so an
    # audience that fits in a page is never planned; the other 31 are chunked.
    assert len(chunks) == 4  # 10 + 10 + 10 + 1
    assert all(c.done_at is not None for c in chunks)
    assert chunks[0].lo == str(admins[3].pk)
    assert [c.hi for c in chunks[:-1]] == [str(admins[i].pk) for i in (13, 23, 33)]


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "PARALLEL_CHUNK": 100})
def test_a_small_audience_is_one_job(make_users):
    make_users(35, group="admin")
    event = notify(Audience.role("admin"), "x")
    assert not DeliveryChunk.objects.filter(event=event).exists()
    assert Notification.objects.filter(event=event).count() == 35


class Recording(BaseBackend):
    """Records chunk jobs instead of running them: a broker with no worker yet."""

    chunks: list[tuple[int, int]] = []

    def enqueue(self, job, *args):
        if job == "deliver_chunk":
            Recording.chunks.append(args)
        else:
            run(job, args, enqueue=self.enqueue)


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "BACKEND": f"{__name__}.Recording"})
def test_chunks_can_run_in_any_order_and_twice_and_the_last_one_finishes(make_users):
    admins = make_users(25, group="admin")
    Recording.chunks = []
    event = notify(Audience.role("admin"), "x")
    jobs = list(Recording.chunks)
    assert [index for _e, index in jobs] == [0, 1, 2]
    assert Event.objects.get(pk=event.pk).state == Event.State.DELIVERING
    # Run them backwards, and one of them twice (a redelivered message).
    assert deliver_chunk(event.pk, 2) is False
    assert deliver_chunk(event.pk, 0) is False
    assert deliver_chunk(event.pk, 0) is False
    assert deliver_chunk(event.pk, 1) is True
    event.refresh_from_db()
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 25)
    assert recipients(event) == [u.pk for u in admins]
    dupes = Notification.objects.values("recipient").annotate(n=Count("id")).filter(n__gt=1)
    assert not dupes.exists()


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "BACKEND": f"{__name__}.Recording"})
def test_replanning_resends_only_the_chunks_not_done(make_users):
    make_users(25, group="admin")
    Recording.chunks = []
    event = notify(Audience.role("admin"), "x")
    deliver_chunk(event.pk, 1)
    Recording.chunks = []
    deliver(event.pk, enqueue=get_backend().enqueue)  # what the relay has run for a stuck Event
    assert [index for _e, index in Recording.chunks] == [0, 2]


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "BACKEND": "eager"})
def test_eager_runs_chunks_through_the_chunk_actor(make_users):
    admins = make_users(22, group="admin")
    event = notify(Audience.role("admin").exclude(admins[0]), "x")
    assert recipients(event) == [u.pk for u in admins[1:]]
    # 21 recipients: the first page of 4 by the planning job, then 10 + 7.
    assert DeliveryChunk.objects.filter(event=event).count() == 2


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "PARALLEL_CHUNK": None})
def test_parallel_chunks_can_be_turned_off(make_users):
    make_users(35, group="admin")
    event = notify(Audience.role("admin"), "x")
    assert not DeliveryChunk.objects.filter(event=event).exists()
    assert Notification.objects.filter(event=event).count() == 35


def test_a_chunk_job_for_a_chunk_that_does_not_exist_is_poison(caplog):
    from offchat_notify.exceptions import PoisonMessage
    from offchat_notify.tasks import deliver_chunk as chunk_actor

    with pytest.raises(PoisonMessage, match="No chunk 3 of Event 987654"):
        chunk_actor.fn(987654, 3)
    assert "has no chunk 3; nothing to deliver" in caplog.text


@override_settings(
    OFFCHAT_NOTIFY={**CHUNKED, "BACKEND": f"{__name__}.Recording", "MAX_ATTEMPTS": 2}
)
def test_a_chunk_that_keeps_failing_fails_its_event(make_users, monkeypatch):
    from django.db import OperationalError

    from offchat_notify.exceptions import PermanentDeliveryError, TransientDeliveryError

    make_users(25, group="admin")
    Recording.chunks = []
    event = notify(Audience.role("admin"), "x")

    def broken(*args, **kwargs):
        raise OperationalError("disk full")

    monkeypatch.setattr("offchat_notify.delivery.writer.insert_page", broken)
    monkeypatch.setattr("offchat_notify.delivery.writer.insert_first", broken)  # PostgreSQL's
    with pytest.raises(TransientDeliveryError, match="chunk 1: .*disk full"):
        deliver_chunk(event.pk, 1)
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.QUEUED, 1)
    with pytest.raises(PermanentDeliveryError):
        deliver_chunk(event.pk, 1)
    event.refresh_from_db()
    assert (event.state, event.failures) == (Event.State.FAILED, 2)
    assert "disk full" in event.last_error
    # A failed Event's other chunks do nothing more.
    monkeypatch.undo()
    assert deliver_chunk(event.pk, 0) is False
    # Only the first page, written by the planning job before the chunks, is there.
    assert Notification.objects.filter(event=event).count() == 4


@override_settings(OFFCHAT_NOTIFY={**CHUNKED, "PARALLEL_CHUNK": None, "MAX_ATTEMPTS": 2})
def test_deliveries_sent_twice_do_not_use_up_attempts(make_users):
    make_users(3, group="admin")
    event = notify(Audience.role("admin"), "x")
    for _ in range(3):  # the relay during a backlog, or concurrent workers
        Event.objects.filter(pk=event.pk).update(state=Event.State.QUEUED)
        deliver(event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts, event.failures) == (Event.State.DELIVERED, 4, 0)
