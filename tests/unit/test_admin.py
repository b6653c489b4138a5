"""The admin: actions gated on permissions, the Event admin read-only, the overview."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from offchat_notify import Audience
from offchat_notify.models import Event, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model: Any, client: Any) -> Any:
    """Log in a staff user holding exactly the permissions named (``"view_event"``...)."""

    def login(*codenames: str) -> Any:
        user = django_user_model.objects.create_user(
            f"staff-{uuid.uuid4().hex[:8]}", password="pw", is_staff=True
        )
        perms = Permission.objects.filter(
            content_type__app_label="offchat_notify", codename__in=codenames
        )
        assert perms.count() == len(codenames)
        user.user_permissions.set(perms)
        client.force_login(user)
        return user

    return login


def failed_event(users: list[Any]) -> Event:
    return Event.objects.create(
        verb="x",
        audience=Audience.users(users).spec,
        state=Event.State.FAILED,
        attempts=3,
        failures=3,
        last_error="boom",
    )


def run_action(client: Any, model: str, action: str, pks: list[int]) -> Any:
    url = reverse(f"admin:offchat_notify_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": pks}, follow=True)


def action_choices(client: Any, model: str) -> list[str]:
    response = client.get(reverse(f"admin:offchat_notify_{model}_changelist"))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is available
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


# Actions need more than the view permission


def test_a_viewer_cannot_retry_a_failed_event(client, staff, make_users):
    event = failed_event(make_users(2))
    staff("view_event")
    assert "retry_delivery" not in action_choices(client, "event")
    response = run_action(client, "event", "retry_delivery", [event.pk])
    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.state, event.attempts, event.last_error) == (Event.State.FAILED, 3, "boom")
    assert not Notification.objects.filter(event=event).exists()


def test_a_user_who_may_change_events_can_retry_them(client, staff, make_users):
    users = make_users(2)
    event = failed_event(users)
    staff("view_event", "change_event")
    assert "retry_delivery" in action_choices(client, "event")
    response = run_action(client, "event", "retry_delivery", [event.pk])
    assert b"1 event sent for delivery again." in response.content
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED  # the sync backend delivers inline
    assert Notification.objects.filter(event=event).count() == 2


def test_a_viewer_cannot_mark_someone_elses_notifications(client, staff, make_users):
    (owner,) = make_users(1)
    event = Event.objects.create(verb="x", audience=Audience.users([owner]).spec)
    unread = Notification.objects.create(event=event, recipient=owner)
    staff("view_notification")
    choices = action_choices(client, "notification")
    assert "mark_read" not in choices and "mark_unread" not in choices
    run_action(client, "notification", "mark_read", [unread.pk])
    unread.refresh_from_db()
    assert unread.read_at is None

    Notification.objects.filter(pk=unread.pk).mark_read()
    run_action(client, "notification", "mark_unread", [unread.pk])
    unread.refresh_from_db()
    assert unread.read_at is not None


def test_a_user_who_may_change_notifications_can_mark_them(client, staff, make_users):
    (owner,) = make_users(1)
    event = Event.objects.create(verb="x", audience=Audience.users([owner]).spec)
    row = Notification.objects.create(event=event, recipient=owner)
    staff("view_notification", "change_notification")
    assert {"mark_read", "mark_unread"} <= set(action_choices(client, "notification"))
    response = run_action(client, "notification", "mark_read", [row.pk])
    assert b"1 marked read." in response.content
    row.refresh_from_db()
    assert row.read_at is not None
    run_action(client, "notification", "mark_unread", [row.pk])
    row.refresh_from_db()
    assert row.read_at is None


# The Event admin is read-only: editing would bypass notify()'s validation


def test_nobody_adds_events_in_the_admin(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(root)
    response = client.get(reverse("admin:offchat_notify_event_add"))
    assert response.status_code == 403
    response = client.post(
        reverse("admin:offchat_notify_event_add"),
        {"verb": "x", "level": "info", "audience": '{"users": [true]}', "data": "{}"},
    )
    assert response.status_code == 403
    assert not Event.objects.exists()


def test_nobody_edits_an_events_audience_or_payload(client, django_user_model, make_users):
    users = make_users(2)
    event = Event.objects.create(verb="x", title="t", audience=Audience.users(users).spec)
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(root)
    url = reverse("admin:offchat_notify_event_change", args=[event.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields  # every field is shown read-only
    response = client.post(
        url, {"verb": "y", "title": "t2", "level": "info", "audience": '{"staff": true}'}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert (event.verb, event.title, event.audience) == ("x", "t", {"users": [u.pk for u in users]})


def test_deleting_an_event_stays_a_matter_of_the_delete_permission(client, staff, make_users):
    event = failed_event(make_users(1))
    staff("view_event")
    url = reverse("admin:offchat_notify_event_delete", args=[event.pk])
    assert client.get(url).status_code == 403
    staff("view_event", "delete_event")
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Event.objects.filter(pk=event.pk).exists()


# The overview (admin/offchat_notify/event/dashboard/)


@pytest.fixture
def superuser_client(client: Any, django_user_model: Any) -> Any:
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(root)
    return client


def overview(client: Any, monkeypatch: Any, **fields: Any) -> str:
    """The overview page, with ``fields`` of the status snapshot replaced."""
    import dataclasses

    from offchat_notify import admin as notify_admin
    from offchat_notify.ops.status import snapshot

    monkeypatch.setattr(notify_admin, "snapshot", lambda: dataclasses.replace(snapshot(), **fields))
    response = client.get(reverse("admin:offchat_notify_dashboard"))
    assert response.status_code == 200
    return response.content.decode()


def test_overview_shows_what_redis_knows_and_no_consumer_count(superuser_client, monkeypatch):
    from offchat_notify.backends.base import BrokerStats, QueueStats

    queue = QueueStats("offchat_notify", ready=3, delayed=0, dead=0, in_flight=1)
    html = overview(
        superuser_client,
        monkeypatch,
        broker=BrokerStats("redis", True, queues=[queue], connected=2),
    )
    assert "2 processes connected" in html
    assert "in flight" in html and "<td>1</td>" in html
    assert "<th>consumers</th>" not in html  # Redis cannot count them: no column of dashes
    assert "Redis keeps no count of consumers" in html


def test_overview_shows_consumers_where_the_broker_counts_them(superuser_client, monkeypatch):
    from offchat_notify.backends.base import BrokerStats, QueueStats

    queue = QueueStats("offchat_notify", ready=0, delayed=0, dead=0, consumers=4)
    html = overview(
        superuser_client, monkeypatch, broker=BrokerStats("rabbitmq", True, queues=[queue])
    )
    assert "<th>consumers</th>" in html and "<td>4</td>" in html
    assert "in flight" not in html and "connected" not in html


def test_overview_shows_a_localized_time_and_names_the_schedulers_host_and_pid(
    superuser_client, monkeypatch
):
    from datetime import datetime, timezone

    from django.utils.formats import date_format

    taken = datetime(2026, 11, 29, 6, 58, 22, tzinfo=timezone.utc)
    html = overview(
        superuser_client,
        monkeypatch,
        taken_at=taken.isoformat(),
        scheduler="vm:15795:e820968e",
    )
    assert "2026-11-29T06:58:22" not in html
    assert date_format(taken, "DATETIME_FORMAT") in html  # Nov. 29, 2026, 6:58 a.m.
    assert "host vm, pid 15795" in html
    assert "none (no scheduler holds the lock)" in overview(
        superuser_client, monkeypatch, scheduler="none (no scheduler holds the lock)"
    )


def test_the_overview_is_linked_from_the_apps_index_and_the_event_list(superuser_client):
    link = f'href="{reverse("admin:offchat_notify_dashboard")}"'
    app_index = superuser_client.get(reverse("admin:app_list", args=["offchat_notify"]))
    assert link in app_index.content.decode()
    changelist = superuser_client.get(reverse("admin:offchat_notify_event_changelist"))
    assert link in changelist.content.decode()


def test_the_overview_link_is_only_for_who_may_see_it(client, staff):
    staff("view_notification")
    app_index = client.get(reverse("admin:app_list", args=["offchat_notify"]))
    assert app_index.status_code == 200
    assert reverse("admin:offchat_notify_dashboard") not in app_index.content.decode()


def test_the_event_list_has_few_short_columns(superuser_client, make_users):
    failed_event(make_users(1))
    response = superuser_client.get(reverse("admin:offchat_notify_event_changelist"))
    columns = [c for c in response.context["cl"].list_display if c != "action_checkbox"]
    assert len(columns) <= 7
    assert not {"title", "skipped_count", "delivered_at", "updated_at"} & set(columns)
    assert {"id", "verb", "state"} <= set(columns)


def test_push_subscriptions_are_seen_and_deleted_never_added_or_edited(
    superuser_client, make_users
):
    from offchat_notify.models import PushSubscription

    (user,) = make_users(1)
    subscription = PushSubscription.objects.create(
        user=user, endpoint="https://push.example.com/x", p256dh="k", auth="a"
    )
    base = "admin:offchat_notify_pushsubscription"
    assert superuser_client.get(reverse(f"{base}_changelist")).status_code == 200
    assert superuser_client.get(reverse(f"{base}_add")).status_code == 403
    change = superuser_client.post(
        reverse(f"{base}_change", args=[subscription.pk]), {"user_agent": "forged"}
    )
    assert change.status_code == 403
    subscription.refresh_from_db()
    assert subscription.user_agent == ""
    delete = superuser_client.post(
        reverse(f"{base}_delete", args=[subscription.pk]), {"post": "yes"}
    )
    assert delete.status_code == 302
    assert not PushSubscription.objects.exists()
