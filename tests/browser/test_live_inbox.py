"""The live inbox in a real browser: the admin's badge changes without a reload.

An admin's page stays open while a member posts a message from another
browser context. The badge, the drop-down and marking read are checked on
that same document (a marker set in the page before the post must survive,
so no reload happened). The time from the click on Send to the badge change
is printed, never asserted: the machine's load decides it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Demo
from .pages import (
    UNREAD,
    expect,
    flag_message,
    inbox,
    open_conversation,
    open_inbox,
    post_message,
    wait_for_badge,
)

pytestmark = pytest.mark.browser

#: Records, in the page, when the badge first shows "1" (Date.now(), in ms).
WATCH_BADGE = """(selector) => {
  const badge = document.querySelector(selector);
  window.badgeShownAt = null;
  window.notReloaded = true;
  new MutationObserver(() => {
    if (window.badgeShownAt === null && !badge.hidden && badge.textContent === "1") {
      window.badgeShownAt = Date.now();
    }
  }).observe(badge, { attributes: true, childList: true, characterData: true, subtree: true });
}"""


def client_mode(page: Any) -> str:
    """How the page's client gets news: "stream" (SSE) or "polling"."""
    expect(inbox(page)).to_have_attribute("data-mode", re.compile(r"^(stream|polling)$"))
    return str(inbox(page).get_attribute("data-mode"))


@pytest.mark.parametrize(
    "demo", ["sync", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)
def test_a_posted_message_reaches_the_open_admin_page_without_a_reload(
    demo: Demo, log_in: Callable[[str], Any]
) -> None:
    # Given: alice's page open, her badge at 0, a marker that a reload would wipe
    alice = log_in("alice")
    wait_for_badge(alice, 0)
    mode = client_mode(alice)
    assert mode == "stream", "under uvicorn the example serves the live stream"
    alice.evaluate(WATCH_BADGE, "header [data-offchat-badge]")

    # When: carol posts a message, from a browser of her own
    carol = log_in("carol")
    open_conversation(carol, "general")
    text = f"Live hello ({demo.mode}, {uuid.uuid4().hex[:6]})"
    carol.get_by_placeholder("Write a message…").fill(text)
    sent_at = carol.evaluate("Date.now()")
    carol.get_by_role("button", name="Send", exact=True).click()

    # Then: alice's badge shows it, on the same document
    wait_for_badge(alice, 1)
    took_ms = alice.evaluate("window.badgeShownAt") - sent_at
    assert alice.evaluate("window.notReloaded") is True
    print(f"\n[{demo.mode}, client mode {mode}] Send click -> alice's badge: {took_ms} ms")

    # The drop-down lists it, linked to the message
    items = open_inbox(alice)
    expect(items).to_have_count(1)
    item = items.first
    expect(item).to_have_class(UNREAD)
    expect(item.locator(".offchat-title")).to_have_text("New message from carol in #general")
    expect(item.locator("a.offchat-link")).to_have_attribute(
        "href", re.compile(r"/conversations/\d+/#message-\d+$")
    )
    expect(item.locator(".offchat-meta")).to_contain_text("carol")

    # Marking it read lowers the badge, and the server agrees after a reload
    item.get_by_role("button", name="Mark read").click()
    wait_for_badge(alice, 0)
    expect(item).not_to_have_class(UNREAD)
    assert alice.evaluate("window.notReloaded") is True
    alice.reload()
    wait_for_badge(alice, 0)


def test_server_text_is_shown_as_text_and_mark_all_read_clears_the_badge(
    demo: Demo, log_in: Callable[[str], Any]
) -> None:
    # Given: bob's page open; carol's message flagged by dave with markup as the reason
    bob = log_in("bob")
    wait_for_badge(bob, 0)
    carol = log_in("carol")
    text = f"Cheap watches ({uuid.uuid4().hex[:6]})"
    post_message(carol, "general", text)
    reason = '<img src="x" onerror="window.injected = 1"><b>bold</b>'
    flag_message(log_in("dave"), "general", text, reason=reason)

    # When
    wait_for_badge(bob, 1)
    items = open_inbox(bob)

    # Then: the reason is text, never markup
    expect(items).to_have_count(1)
    expect(items.first.locator(".offchat-body")).to_have_text(reason)
    expect(items.first.locator("img, b")).to_have_count(0)
    assert bob.evaluate("window.injected") is None

    # "Mark all read" empties the badge
    inbox(bob).get_by_role("button", name="Mark all read").click()
    wait_for_badge(bob, 0)
    expect(items.first).not_to_have_class(UNREAD)


def test_without_the_stream_the_page_falls_back_to_polling(
    demo: Demo, log_in: Callable[[str], Any]
) -> None:
    # Given: alice's stream answers 503, as a proxy without the ASGI server would
    alice = log_in("alice")
    alice.route(re.compile(r"/stream/"), lambda route: route.fulfill(status=503, body="{}"))
    alice.reload()
    expect(inbox(alice)).to_have_attribute("data-mode", "polling")
    wait_for_badge(alice, 0)

    # When
    post_message(log_in("carol"), "general", f"Polled hello ({uuid.uuid4().hex[:6]})")

    # Then: the next poll of unread/ finds it (every 15 s)
    wait_for_badge(alice, 1)
    expect(open_inbox(alice)).to_have_count(1)


def test_host_code_follows_the_client_events(demo: Demo, log_in: Callable[[str], Any]) -> None:
    # Given: alice on the notifications page, whose script listens to offchat:unread
    # and offchat:notification (chat/templates/chat/notifications.html)
    alice = log_in("alice")
    alice.goto("notifications/")
    expect(alice.locator("#unread-count")).to_have_text("0 unread")
    expect(alice.locator("#new-notifications")).to_be_hidden()
    client_mode(alice)

    # When
    post_message(log_in("carol"), "general", f"Evented hello ({uuid.uuid4().hex[:6]})")

    # Then: the page's own count and notice follow, without a reload
    wait_for_badge(alice, 1)
    expect(alice.locator("#unread-count")).to_have_text("1 unread")
    expect(alice.locator("#new-notifications")).to_be_visible()
    alice.get_by_role("link", name="Show them").click()
    expect(alice.locator("li.notification")).to_have_count(1)
