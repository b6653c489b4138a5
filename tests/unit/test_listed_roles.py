"""ListedRoles: resolvers that only list ids, staged in bulk, then delivered set-based."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.db.models import Count
from django.test import override_settings

from offchat_notify import Audience, notify
from offchat_notify.delivery import deliver
from offchat_notify.exceptions import PermanentDeliveryError, UnknownRole
from offchat_notify.models import Event, Notification, StagedMember
from offchat_notify.roles import ListedRoles

pytestmark = pytest.mark.django_db(transaction=True)


class Directory(ListedRoles):
    """Roles from an "external directory": a dict of role -> ids, changeable by tests."""

    roles: dict[str, list] = {}
    listed: list[str] = []

    def known(self, role):
        return role in self.roles

    def members(self, role):
        type(self).listed.append(role)
        yield from self.roles[role]


RESOLVER = {"BACKEND": "sync", "ROLE_RESOLVER": f"{__name__}.Directory"}


@pytest.fixture(autouse=True)
def directory():
    Directory.roles, Directory.listed = {}, []
    with override_settings(OFFCHAT_NOTIFY=RESOLVER):
        yield Directory


def recipients(event) -> list[int]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))


def test_a_listed_role_is_delivered_to_its_active_members_once(make_users, caplog):
    members = make_users(7)
    (inactive,) = make_users(1, is_active=False)
    others = make_users(3)
    # Duplicates, an inactive user, an id with no user, users given as instances.
    Directory.roles["oncall"] = [*members, members[0].pk, inactive.pk, others[-1].pk + 1000]
    with caplog.at_level(logging.DEBUG, logger="offchat_notify.delivery.staging"):
        event = notify(Audience.role("oncall"), "page")
    event.refresh_from_db()
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 7)
    assert recipients(event) == [u.pk for u in members]
    how = "COPY" if connection.vendor == "postgresql" else "bulk insert"
    assert f"staged 10 member(s) of role oncall ({how})" in caplog.text
    assert not StagedMember.objects.filter(event=event).exists()  # dropped once delivered


class FromTheDatabase(ListedRoles):
    """Lists staff from the same database, through a server-side cursor, 2 at a time."""

    def known(self, role):
        return role == "staff"

    def members(self, role):
        from django.contrib.auth import get_user_model

        staff = get_user_model().objects.filter(is_staff=True).values_list("pk", flat=True)
        yield from staff.iterator(chunk_size=2)


@override_settings(
    OFFCHAT_NOTIFY={**RESOLVER, "ROLE_RESOLVER": f"{__name__}.FromTheDatabase", "PAGE_SIZE": 3}
)
def test_a_resolver_may_read_the_same_database_while_its_ids_are_staged(make_users):
    staff = make_users(8, is_staff=True)
    make_users(2)
    event = notify(Audience.role("staff"), "x")
    assert recipients(event) == [u.pk for u in staff]


def test_listed_roles_combine_with_users_unions_and_exclusions(make_users):
    a, b, c, d, e = make_users(5)
    Directory.roles.update(oncall=[a.pk, b.pk, c.pk], leads=[c.pk, d.pk])
    audience = (Audience.role("oncall") | Audience.role("leads") | Audience.users([e])).exclude(b)
    event = notify(audience, "x")
    assert recipients(event) == [a.pk, c.pk, d.pk, e.pk]
    assert sorted(Directory.listed) == ["leads", "oncall"]  # each role listed once


@override_settings(OFFCHAT_NOTIFY={**RESOLVER, "PAGE_SIZE": 3})
def test_pages_of_staged_members_cover_each_member_once(make_users):
    users = make_users(20)
    (inactive,) = make_users(1, is_active=False)
    listed = [u.pk for u in users[::2]]
    # Duplicates that straddle page ends, an inactive user, an unknown id.
    Directory.roles["oncall"] = [*listed, *listed[2:6], inactive.pk, users[-1].pk + 99]
    audience = (Audience.role("oncall") | Audience.users([users[1], users[9]])).exclude(users[4])
    event = notify(audience, "x")
    expected = sorted({*listed, users[1].pk, users[9].pk} - {users[4].pk})
    assert recipients(event) == expected


def test_an_unknown_listed_role_is_refused_at_the_call(make_users):
    with pytest.raises(UnknownRole, match="Unknown role 'nobody' for Directory"):
        notify(Audience.role("nobody"), "x")


@override_settings(OFFCHAT_NOTIFY={**RESOLVER, "PARALLEL_CHUNK": 10, "PAGE_SIZE": 4})
def test_a_large_listed_role_is_split_into_chunks_that_read_the_staged_members(make_users):
    members = make_users(35)
    make_users(5)
    Directory.roles["all-hands"] = [u.pk for u in reversed(members)]  # any order
    event = notify(Audience.role("all-hands"), "x")
    event.refresh_from_db()
    assert (event.state, event.recipient_count) == (Event.State.DELIVERED, 35)
    assert event.chunks.count() == 4
    assert recipients(event) == [u.pk for u in members]
    assert Directory.listed == ["all-hands"]  # staged once, by the job that planned the chunks
    assert (
        Notification.objects.values("event", "recipient").annotate(n=Count("id")).filter(n__gt=1)
    ).count() == 0


def test_each_attempt_lists_the_members_again(make_users):
    a, b, c = make_users(3)
    Directory.roles["oncall"] = [a.pk, b.pk]
    event = Event.objects.create(verb="x", audience=Audience.role("oncall").spec)
    # A first attempt wrote a's row, then its worker died.
    Notification.objects.create(event=event, recipient=a)
    Event.objects.filter(pk=event.pk).update(state=Event.State.DELIVERING, attempts=1)
    Directory.roles["oncall"] = [a.pk, c.pk]  # the directory changed meanwhile
    event = deliver(event.pk)
    assert event.state == Event.State.DELIVERED
    assert recipients(event) == [a.pk, c.pk]
    assert not StagedMember.objects.filter(event=event).exists()


def test_a_bad_id_fails_the_event_with_a_clear_error_and_stages_nothing(make_users):
    (a,) = make_users(1)
    Directory.roles["oncall"] = [a.pk, "not-an-id"]
    event = Event.objects.create(verb="x", audience=Audience.role("oncall").spec)
    with pytest.raises(
        PermanentDeliveryError, match=r"Directory.members\('oncall'\) yielded 'not-an-id'"
    ):
        deliver(event.pk)
    event.refresh_from_db()
    assert event.state == Event.State.FAILED
    assert "yielded 'not-an-id'" in event.last_error
    assert not StagedMember.objects.exists()  # the staging transaction rolled back
    assert not Notification.objects.exists()


def test_a_listed_resolver_has_no_filter():
    with pytest.raises(NotImplementedError, match="lists ids .*Use members"):
        Directory().filter("oncall")
