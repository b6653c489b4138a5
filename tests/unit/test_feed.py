"""The stream's page read: the JSON it builds once per page is each recipient's item."""

from __future__ import annotations

import json

import pytest

from offchat_notify.inbox import feed
from offchat_notify.inbox.items import item
from offchat_notify.models import Notification
from tests.unit.inbox_rows import deliver

pytestmark = pytest.mark.django_db


def test_a_page_is_each_recipients_item_with_their_unread_count(make_users):
    alice, bob, carol, outsider = make_users(4)
    target = make_users(1)[0]  # a target without get_absolute_url: target_url is null
    deliver([alice], verb="older")
    event = deliver(
        [alice, bob, carol],
        title='Quote " and \\ backslash, \u00e9, </script>',
        body="line one\nline two",
        level="warning",
        data={"n": 1, "nested": {"list": [1, "two", None]}},
        actor=outsider,
        target=target,
    )
    Notification.objects.filter(recipient=bob, event=event).mark_read()

    ready = feed.page_items(event.pk, [alice.pk, bob.pk, carol.pk, outsider.pk])

    assert sorted(r[0] for r in ready) == sorted([alice.pk, bob.pk, carol.pk])
    unread = {alice.pk: 2, bob.pk: 0, carol.pk: 1}
    for recipient, notification_id, data in ready:
        row = Notification.objects.with_event().get(pk=notification_id)
        assert row.recipient_id == recipient
        expected = {**json.loads(json.dumps(item(row))), "unread": unread[recipient]}
        assert json.loads(data) == expected


def test_a_page_of_a_deleted_event_or_of_no_connected_recipient_is_empty(make_users):
    alice, bob = make_users(2)
    event = deliver([alice])
    assert feed.page_items(event.pk, [bob.pk]) == []
    event.delete()
    assert feed.page_items(event.pk, [alice.pk]) == []
