"""The example chat project in a real browser: the demo's story through its pages.

Headless Chromium driven by Playwright, against ``example_project/run.py``
(fixtures in conftest.py). The header's badge updates without a reload
(test_live_inbox.py measures it); here the pages are followed as a user
clicks through them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Demo
from .pages import (
    badge,
    expect,
    flag_message,
    message_item,
    open_inbox,
    post_message,
    wait_for_badge,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    "demo", ["sync", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)
def test_member_message_notifies_admin(demo: Demo, log_in: Callable[[str], Any]) -> None:
    text = f"Hello from carol ({demo.mode}, {uuid.uuid4().hex[:6]})"
    carol = log_in("carol")
    post_message(carol, "general", text)

    alice = log_in("alice")
    wait_for_badge(alice, 1)  # in the header, on every page
    open_inbox(alice)
    alice.get_by_role("link", name="See all").click()
    expect(alice.locator("#unread-count")).to_have_text("1 unread")
    item = alice.locator("li.notification")
    expect(item).to_have_count(1)
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    expect(item.locator(".title")).to_have_text("New message from carol in #general")
    expect(item.get_by_role("link", name=text)).to_have_attribute(
        "href", re.compile(r"^/conversations/\d+/#message-\d+$")
    )

    item.get_by_role("button", name="Mark read").click()
    expect(alice.locator("#unread-count")).to_have_text("0 unread")
    expect(badge(alice)).to_be_hidden()
    expect(item).not_to_have_class(re.compile(r"\bunread\b"))

    # The link goes to the message, in its conversation.
    item.get_by_role("link", name=text).click()
    expect(alice).to_have_url(re.compile(r"/conversations/\d+/#message-\d+$"))
    expect(alice.locator("li.message:target .text")).to_have_text(text)


def test_member_flag_notifies_moderators(demo: Demo, log_in: Callable[[str], Any]) -> None:
    text = f"Buy cheap watches ({uuid.uuid4().hex[:6]})"
    carol = log_in("carol")
    post_message(carol, "general", text)
    expect(message_item(carol, text).get_by_role("button", name="Flag")).to_have_count(0)

    # An admin's flag notifies no one: the rule returns None for non-members.
    alice = log_in("alice")
    flag_message(alice, "general", text)
    bob = log_in("bob")
    bob.goto("notifications/")
    expect(bob.locator("#unread-count")).to_have_text("0 unread")
    expect(bob.locator("li.notification")).to_have_count(0)

    # A member's flag notifies the moderators.
    dave = log_in("dave")
    flag_message(dave, "general", text, reason="spam")
    expect(message_item(dave, text)).to_contain_text("You flagged this")

    bob.goto("notifications/")
    wait_for_badge(bob, 1)
    bob.reload()  # the page's list is rendered by the server
    item = bob.locator("li.notification")
    expect(item).to_have_count(1)
    expect(item.locator(".title")).to_have_text("dave flagged a message from carol in #general")
    expect(item).to_contain_text("Reason: spam")
    expect(item.get_by_role("link", name=text)).to_be_visible()

    bob.get_by_role("button", name="Mark all read").click()
    expect(bob.locator(".messages")).to_contain_text("1 notification(s) marked read.")
    expect(bob.locator("#unread-count")).to_have_text("0 unread")
    expect(badge(bob)).to_be_hidden()
