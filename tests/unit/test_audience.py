"""Audience specs and their resolution into pages of user ids."""

from __future__ import annotations

import pytest
from django.test import override_settings

from offchat_notify import Audience, InvalidNotification, notify
from offchat_notify.delivery.pages import iter_pages
from offchat_notify.models import Notification
from offchat_notify.roles import GroupRoles

pytestmark = pytest.mark.django_db(transaction=True)


def resolve(audience: Audience, page_size: int = 1000) -> list[list[int]]:
    """The audience's pages of ids (empty pages dropped)."""
    pages = [
        list(users.order_by("pk").values_list("pk", flat=True))
        for _last, users in iter_pages(audience.spec, GroupRoles(), page_size)
    ]
    return [page for page in pages if page]


def flat(pages: list[list[int]]) -> list[int]:
    return [pk for page in pages for pk in page]


def test_specs_are_plain_json():
    assert Audience.users([3, 1, 3]).spec == {"users": [1, 3]}
    assert Audience.role("admin").spec == {"role": "admin"}
    assert (Audience.staff() | Audience.superusers()).spec == {
        "union": [{"staff": True}, {"superusers": True}]
    }
    assert Audience.role("admin").exclude(7).exclude([8]).spec == {
        "exclude": [7, 8],
        "from": {"role": "admin"},
    }


def test_union_flattens():
    a = Audience.users([1]) | Audience.role("x") | Audience.staff()
    assert a.spec == {"union": [{"users": [1]}, {"role": "x"}, {"staff": True}]}


def test_users_accepts_instances_and_primary_keys(make_users):
    u1, u2 = make_users(2)
    assert Audience.users([u2, u1.pk]).spec == {"users": [u1.pk, u2.pk]}
    assert Audience.users(u1).spec == {"users": [u1.pk]}


@pytest.mark.parametrize("bad", [None, True, "abc", 1.5])
def test_users_refuses_what_is_not_a_primary_key(bad):
    with pytest.raises(InvalidNotification):
        Audience.users([bad])


def test_from_spec_refuses_malformed_specs():
    for spec in [{}, {"users": 1}, {"role": ""}, {"staff": False}, {"union": []}, {"x": 1}, []]:
        with pytest.raises(InvalidNotification, match="audience spec"):
            Audience.from_spec(spec)
    assert Audience.from_spec({"exclude": [1], "from": {"role": "a"}}).spec["exclude"] == [1]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"users": [True]}, "True is not a user id"),
        ({"users": [1, None]}, "None is not a user id"),
        ({"users": [1.5]}, "1.5 is not a user id"),
        ({"users": [""]}, "'' is not a user id"),
        ({"users": [[1]]}, "[1] is not a user id"),
        ({"users": [1, "2"]}, "mixes ints and strings"),
        ({"users": [3, 1]}, "not sorted"),
        ({"users": [1, 1]}, "not distinct"),
        ({"users": ["b", "a"]}, "not sorted"),
        ({"exclude": [2, 2], "from": {"role": "a"}}, "not distinct"),
        ({"exclude": [False], "from": {"role": "a"}}, "False is not a user id"),
        ({"union": [{"role": "a"}, {"users": [5, 4]}]}, "not sorted"),
    ],
)
def test_from_spec_refuses_id_lists_the_paging_cannot_bisect(spec, problem):
    with pytest.raises(InvalidNotification, match="Malformed audience spec") as error:
        Audience.from_spec(spec)
    assert problem in str(error.value)


def test_from_spec_takes_sorted_distinct_int_or_string_ids():
    assert Audience.from_spec({"users": []}).spec == {"users": []}
    assert Audience.from_spec({"users": [1, 2, 10]}).spec == {"users": [1, 2, 10]}
    assert Audience.from_spec({"users": ["a", "b"]}).spec == {"users": ["a", "b"]}
    spec = {"exclude": [3], "from": {"union": [{"users": [1, 3]}, {"role": "x"}]}}
    assert Audience.from_spec(spec).spec == spec


def test_union_and_exclusion_resolve_without_duplicates(make_users):
    admins = make_users(4, group="admin")
    staff = make_users(2, is_staff=True)
    both = make_users(1, group="admin", is_staff=True)
    audience = (Audience.role("admin") | Audience.staff()).exclude(admins[0])
    expected = sorted(u.pk for u in [*admins[1:], *staff, *both])
    assert flat(resolve(audience)) == expected


def test_pages_are_bounded_ascending_and_complete(make_users):
    users = make_users(23, group="admin")
    pages = resolve(Audience.role("admin"), page_size=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert flat(pages) == [u.pk for u in users]


def test_long_id_lists_never_put_more_than_a_page_of_ids_in_a_query(make_users):
    users = make_users(30)
    real = [u.pk for u in users]
    # Many unknown ids interleaved with real ones, and an exclusion list.
    missing = [real[-1] + 1000 + i for i in range(50)]
    audience = Audience.users(real[::2] + missing + real[1::2]).exclude(real[3:9])
    pages = resolve(audience, page_size=4)
    assert all(len(p) <= 4 for p in pages)
    assert flat(pages) == sorted(set(real) - set(real[3:9]))
    # Each page query carries at most a page of each id list, whatever its length.
    for _last, users in iter_pages(audience.spec, GroupRoles(), 4):
        _sql, params = users.query.sql_with_params()
        assert len(params) <= 2 * 4 + 3


def test_superusers_and_staff_flags(make_users):
    supers = make_users(2, is_superuser=True)
    make_users(2)
    assert flat(resolve(Audience.superusers())) == [u.pk for u in supers]


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync", "PAGE_SIZE": 3})
def test_delivery_with_a_small_chunk_size_writes_everyone_once(make_users):
    admins = make_users(10, group="admin")
    event = notify(Audience.role("admin") | Audience.users(admins[:4]), "x")
    got = list(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))
    assert sorted(got) == [u.pk for u in admins]


def test_str_describes_the_audience():
    assert str(Audience.role("admin").exclude(1) | Audience.users([1, 2])) == (
        "role admin except 1 user(s) | 2 user(s)"
    )
