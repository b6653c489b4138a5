"""Paging a role's members: every page bounded, every member exactly once, on both databases.

On SQLite a group larger than a page is read by user ranges of the unique
(user_id, group_id) index (GroupRoles.window_filter); these tests check that
the pages it makes are the audience, whatever the group's shape, and that a
small or thinly spread group is still listed as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from offchat_notify import Audience
from offchat_notify.delivery.pages import iter_pages
from offchat_notify.delivery.writer import write_range
from offchat_notify.exceptions import NotifyDeprecationWarning
from offchat_notify.models import Event, Notification
from offchat_notify.roles import BaseRoles, GroupRoles, Page, Window, spec

pytestmark = pytest.mark.django_db(transaction=True)

sqlite = pytest.mark.skipif("connection.vendor != 'sqlite'")


def pages_of(audience: Audience, page_size: int, resolver: BaseRoles | None = None, **bounds):
    """[(last_pk, [ids of the page])] in order, empty pages kept."""
    return [
        (last, list(users.order_by("pk").values_list("pk", flat=True)))
        for last, users in iter_pages(audience.spec, resolver or GroupRoles(), page_size, **bounds)
    ]


def check_pages(pages, page_size: int) -> list[int]:
    """Every page at most page_size, inside its range, ranges ascending; return all ids."""
    lower = None
    for last, ids in pages:
        assert len(ids) <= page_size
        assert all((lower is None or pk > lower) and (last is None or pk <= last) for pk in ids)
        if last is not None:
            assert lower is None or last > lower
        lower = last
    every = [pk for _last, ids in pages for pk in ids]
    assert len(every) == len(set(every)), "a user in two pages"
    return every


def join(users: list[Any], group: str) -> None:
    g, _ = Group.objects.get_or_create(name=group)
    through = get_user_model().groups.through
    through.objects.bulk_create([through(user_id=u.pk, group_id=g.pk) for u in users])


@pytest.fixture
def mixed(make_users):
    """60 users: "admin" holds every 3rd one and the last 10, "other" holds 40 of them,
    and users 50-54 are inactive: memberships of other groups sit between the admins."""
    users = make_users(60)
    admins = [u for i, u in enumerate(users) if i % 3 == 0 or i >= 50]
    join(admins, "admin")
    join(users[5:45], "other")
    inactive = users[50:55]
    get_user_model().objects.filter(pk__in=[u.pk for u in inactive]).update(is_active=False)
    active_admins = sorted(u.pk for u in admins if u not in inactive)
    return users, active_admins


@pytest.mark.parametrize("page_size", [1, 2, 5, 7, 13, 17, 100])
def test_a_role_is_paged_exactly_once_whatever_the_page_size(mixed, page_size):
    _users, admins = mixed
    assert check_pages(pages_of(Audience.role("admin"), page_size), page_size) == admins


@pytest.mark.parametrize("page_size", [2, 5, 13])
def test_unions_exclusions_and_explicit_ids_are_paged_exactly_once(mixed, page_size):
    users, admins = mixed
    for u in users[1:12:2]:
        u.is_staff = True
        u.save(update_fields=["is_staff"])
    staff = [u.pk for u in users[1:12:2]]
    named = [users[2].pk, users[40].pk, users[51].pk, users[-1].pk]  # users[51] is inactive
    excluded = [admins[1], admins[-1], users[3].pk, users[41].pk]
    audience = (
        Audience.role("admin") | Audience.role("other") | Audience.staff() | Audience.users(named)
    ).exclude(excluded)
    other = list(
        get_user_model()
        .objects.filter(groups__name="other", is_active=True)
        .values_list("pk", flat=True)
    )
    active = set(get_user_model().objects.filter(is_active=True).values_list("pk", flat=True))
    wanted = (set(admins) | set(other) | set(staff) | set(named)) & active
    expected = sorted(wanted - set(excluded))
    assert check_pages(pages_of(audience, page_size), page_size) == expected


def test_pass_ranges_together_are_the_audience(mixed):
    # Chunks: each pass has its own after/until, and its own view of the group.
    users, admins = mixed
    cuts = [None, users[10].pk, users[11].pk, users[33].pk, users[58].pk, None]
    got = []
    for after, until in zip(cuts, cuts[1:], strict=False):
        got += check_pages(pages_of(Audience.role("admin"), 4, after=after, until=until), 4)
    assert got == admins


def test_write_range_writes_every_member_once(mixed):
    _users, admins = mixed
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    audience = Audience.role("admin").spec
    assert write_range(event.pk, audience, GroupRoles(), page_size=4, stuck_after=15).added == len(
        admins
    )
    # A second pass (a retry) adds nothing and still reads the whole role.
    assert write_range(event.pk, audience, GroupRoles(), page_size=4, stuck_after=15).added == 0
    got = Notification.objects.filter(event=event).values_list("recipient_id", flat=True)
    assert sorted(got) == admins


def test_a_member_who_joins_ahead_of_the_pass_is_in_it(make_users):
    users = make_users(30)
    join(users[:20:2], "admin")
    pages = iter_pages(Audience.role("admin").spec, GroupRoles(), 3)
    seen = list(next(pages)[1].values_list("pk", flat=True))
    join([users[15]], "admin")  # below the group's last member, past the first page
    for _last, page in pages:
        seen += page.values_list("pk", flat=True)
    assert sorted(seen) == sorted([u.pk for u in users[:20:2]] + [users[15].pk])


def test_an_empty_page_writes_nothing(make_users):
    make_users(3)
    event = Event.objects.create(verb="x", audience={"users": []})
    assert (
        write_range(event.pk, {"users": []}, GroupRoles(), page_size=5, stuck_after=15).added == 0
    )
    assert not Notification.objects.filter(event=event).exists()


def test_a_page_ends_where_the_first_of_its_parts_ends():
    # Given id lists cut to a page of 10: 1..20 ends at 10, 1..5 fits whole
    union = {"union": [{"users": list(range(1, 21))}, {"users": list(range(1, 6))}]}
    # Then the page ends at 10 and holds at most 15 users
    found = spec.page(union, GroupRoles(), Window(None, 10))
    assert (found.upper, found.most) == (10, 15)
    # And an exclusion list that ends earlier ends the page there
    excluded = {"exclude": list(range(30)), "from": union}
    assert spec.page(excluded, GroupRoles(), Window(None, 10)).upper == 9
    # And a later page cuts each list after its lower bound
    later = spec.page(union, GroupRoles(), Window(10, 10))
    assert (later.upper, later.most) == (None, 10)


def test_the_window_knows_how_many_users_a_page_can_hold_at_most(make_users):
    users = make_users(3)
    ids = [u.pk for u in users]

    class Sized(BaseRoles):
        def known(self, role):
            return True

        def page(self, role, window):
            return Page(Q(pk__in=ids[:2]), most=2)

    def most(audience: Audience) -> int | None:
        return spec.page(audience.spec, Sized(), Window(None, 10)).most

    assert most(Audience.users(ids)) == 3
    assert most(Audience.role("x") | Audience.users(ids)) == 5
    assert most((Audience.role("x") | Audience.role("y")).exclude(ids[0])) == 4
    assert most(Audience.role("x") | Audience.staff()) is None
    assert most(Audience.role("x") | Audience.role("admin")) == 4
    # no group: listed, none held
    found = spec.page(Audience.role("admin").spec, GroupRoles(), Window(None, 10))
    assert found.most == (0 if connection.vendor == "sqlite" else None)


def test_a_resolver_on_the_deprecated_window_filter_hook_still_pages(make_users):
    users = make_users(3)
    ids = [u.pk for u in users]

    class Legacy(BaseRoles):
        def known(self, role):
            return True

        def window_filter(self, role, window):
            window.holds(2)
            window.cap(ids[1])
            return Q(pk__in=ids[:2])

    with pytest.warns(NotifyDeprecationWarning, match="override page"):
        found = spec.page({"role": "x"}, Legacy(), Window(None, 10))
    assert (found.upper, found.most) == (ids[1], 2)


def test_a_page_known_to_fit_is_not_searched_for_its_end(make_users):
    users = make_users(5)
    with CaptureQueriesContext(connection) as queries:
        pages = pages_of(Audience.users(users[:4]), 4)
    assert pages == [(None, [u.pk for u in users[:4]])]
    assert not any("LIMIT 1 OFFSET" in q["sql"] for q in queries.captured_queries)


def test_a_resolver_without_the_hook_pages_through_page_filter(mixed):
    _users, admins = mixed
    calls = []

    class Legacy(BaseRoles):
        def known(self, role):
            return True

        def page_filter(self, role, after):
            calls.append(after)
            members = get_user_model().groups.through.objects.filter(group__name=role)
            if after is not None:
                members = members.filter(user_id__gt=after)
            return Q(pk__in=members.values("user_id"))

    with pytest.warns(NotifyDeprecationWarning, match="page_filter"):
        assert check_pages(pages_of(Audience.role("admin"), 5, Legacy()), 5) == admins
    assert calls[0] is None and len(calls) == len(admins) // 5 + 1


def test_a_group_roles_subclass_that_pages_its_own_way_keeps_it(mixed):
    _users, admins = mixed

    class Firsts(GroupRoles):
        def page_filter(self, role, after):
            return super().page_filter(role, after) & Q(pk__lte=admins[4])

    with pytest.warns(NotifyDeprecationWarning, match="page_filter"):
        assert check_pages(pages_of(Audience.role("admin"), 2, Firsts()), 2) == admins[:5]


def page_selects(queries) -> list[str]:
    """The page statements (boundary SELECTs and INSERTs on the user table), in order."""
    users = get_user_model()._meta.db_table
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("INSERT") or q["sql"].startswith(f'SELECT "{users}"."id"')
    ]


@sqlite
def test_on_sqlite_a_large_group_is_read_by_bounded_ranges_of_the_unique_index(mixed):
    _users, admins = mixed
    event = Event.objects.create(verb="x", audience=Audience.role("admin").spec)
    with CaptureQueriesContext(connection) as queries:
        write_range(event.pk, {"role": "admin"}, GroupRoles(), page_size=4, stuck_after=15)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    members = get_user_model().objects.filter(groups__name="admin").count()  # inactive too
    assert len(inserts) == members // 4 + 1
    for sql in inserts:
        # "group_id" + 0: not the group_id index; both bounds: only the page's members.
        assert '"group_id" + ' in sql
        assert '"user_id" <= ' in sql and ('"user_id" > ' in sql or '"user_id" >= ' in sql)
    # Each page's end comes from the membership index: none is searched among the users.
    assert not any("LIMIT 1 OFFSET" in q["sql"] for q in queries.captured_queries)


@sqlite
def test_on_sqlite_a_group_of_at_most_a_page_is_listed_as_before(mixed):
    _users, admins = mixed
    members = get_user_model().objects.filter(groups__name="admin").count()  # inactive too
    with CaptureQueriesContext(connection) as queries:
        pages = pages_of(Audience.role("admin"), members)
    assert check_pages(pages, members) == admins
    assert page_selects(queries) and all('"group_id" + ' not in s for s in page_selects(queries))


@sqlite
def test_on_sqlite_a_thinly_spread_group_is_listed_per_page(make_users):
    users = make_users(200)
    join(users, "everyone")  # 200 memberships of another group
    sparse = users[::40]  # 5 members, pages of 2: listing them costs 5 x 3 < 200 / RANGE_WORTH
    join(sparse, "rare")
    with CaptureQueriesContext(connection) as queries:
        pages = pages_of(Audience.role("rare"), 2)
    assert check_pages(pages, 2) == [u.pk for u in sparse]
    assert page_selects(queries) and all('"group_id" + ' not in s for s in page_selects(queries))


@sqlite
def test_on_sqlite_the_last_page_ends_at_the_groups_last_member(make_users):
    # A group that ends on a page boundary: the tail page reads an empty range,
    # not the memberships of every user after the group.
    users = make_users(40)
    join(users[:8], "admin")
    join(users, "everyone")
    with CaptureQueriesContext(connection) as queries:
        pages = pages_of(Audience.role("admin"), 4)
    assert check_pages(pages, 4) == [u.pk for u in users[:8]]
    assert [len(ids) for _last, ids in pages] == [4, 4, 0]
    assert pages[-1][0] is None
    tail = page_selects(queries)[-2:]  # the tail page's boundary SELECT and INSERT
    assert len(tail) == 2 and all(f'"user_id" <= {users[7].pk})' in sql for sql in tail)
