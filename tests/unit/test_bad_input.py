"""Bad input at the call: a clear InvalidNotification, nothing written, the caller's
transaction intact (issue #12, items 3 to 5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from offchat_notify import Audience, InvalidNotification, notify, send_bulk_notification
from offchat_notify.models import Event
from offchat_notify.roles.spec import MAX_IDS
from tests.testapp.models import Document, Room

pytestmark = pytest.mark.django_db


def refused(match: str, **fields):
    """notify() inside the caller's transaction refuses; the caller's own write survives."""
    fields.setdefault("audience", Audience.users([1]))
    with transaction.atomic():
        room = Room.objects.create(name="kept")
        with pytest.raises(InvalidNotification, match=match):
            notify(fields.pop("audience"), fields.pop("verb", "x"), **fields)
        Room.objects.create(name="after")  # the transaction is still usable
    assert Room.objects.filter(pk=room.pk).exists()
    assert Room.objects.filter(name="after").exists()
    assert not Event.objects.exists()


def test_an_unsaved_actor_is_refused_before_it_breaks_the_commit():
    refused("actor must be a saved .* is an unsaved", actor=get_user_model()(pk=999998))


def test_an_unsaved_target_with_a_default_uuid_key_is_refused():
    refused(
        "target must be a saved .* is an unsaved testapp.Document", target=Document(title="draft")
    )


def test_an_unsaved_user_in_an_audience_is_refused():
    with pytest.raises(InvalidNotification, match="unsaved user"):
        Audience.users([get_user_model()(pk=5)])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"title": "a\x00b"}, r"title contains a NUL character"),
        ({"body": "a\x00b"}, r"body contains a NUL character"),
        ({"data": {"k": "a\x00b"}}, r"data\['k'\] contains a NUL character"),
        ({"data": {"a\x00": 1}}, r"contains a NUL character"),
        ({"title": "a\ud800b"}, r"title is not valid Unicode"),
        ({"data": {"k": ["\udfff"]}}, r"data\['k'\]\[0\] is not valid Unicode"),
        ({"data": {"n": 10**5000}}, r"data\['n'\] is an integer of \d+ bits"),
        ({"verb": "v\n\x1b[31mFAKE"}, r"verb contains the control character '\\n'"),
        ({"title": "t\r\nBcc: x"}, r"title contains the control character '\\r'"),
        ({"key": "k\x00"}, r"key contains a NUL character"),
    ],
)
def test_strings_the_database_cannot_store_are_refused(fields, match):
    refused(match, **fields)


def test_deeply_nested_data_is_refused_not_a_recursion_error():
    data: dict = {}
    for _ in range(5000):
        data = {"d": data}
    refused("nests deeper than 32 levels", data=data)


def test_a_body_keeps_its_newlines(make_users):
    user = make_users(1)[0]
    event = notify(Audience.users([user]), "x", body="line 1\nline 2\ttab")
    assert event.body == "line 1\nline 2\ttab"


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([2**63], r"out of the range of testapp.User's primary key"),
        ([Decimal("5.9")], r"Decimal\('5.9'\) is not a user id"),
        ([5.0], r"5.0 is not a user id"),
        ([b"5"], r"b'5' is not a user id"),
        ([True], r"True is not a user id"),
        (["5x"], r"'5x' is not a user id"),
    ],
)
def test_user_ids_must_name_one_key_exactly(ids, match):
    with pytest.raises(InvalidNotification, match=match):
        Audience.users(ids)


def test_a_string_of_digits_is_a_user_id():
    assert Audience.users(["7", 3]).spec == {"users": [3, 7]}


def test_a_queryset_is_refused_with_a_way_out(make_users):
    make_users(2)
    with pytest.raises(InvalidNotification, match="not a QuerySet"):
        send_bulk_notification("x", user_ids=get_user_model().objects.all())


def test_explicit_id_lists_are_capped():
    with pytest.raises(InvalidNotification, match=f"at most {MAX_IDS:,} user ids"):
        Audience.users(range(1, MAX_IDS + 2))


def test_a_role_longer_than_a_group_name_is_refused_at_the_call():
    with pytest.raises(InvalidNotification, match="at most 150 characters"):
        Audience.role("r" * 151)
