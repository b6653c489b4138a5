"""Steps through the example project's pages, shared by the browser tests."""

from __future__ import annotations

import re
from typing import Any

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the browser fixture skips (or fails, in CI) with the reason
    expect = sync_playwright = None

PASSWORD = "demo1234"
#: Milliseconds for one Playwright action or assertion.
ACTION_TIMEOUT_MS = 15_000
#: Seconds for a notification to reach an open page without a reload: the Redis
#: mode waits for the worker, and the polling fallback asks every 15 s.
DELIVERY_TIMEOUT = 30


def open_conversation(page: Any, name: str) -> None:
    page.locator("header").get_by_role("link", name="Conversations").click()
    page.get_by_role("link", name=f"#{name}").click()
    expect(page.get_by_role("heading", name=f"#{name}")).to_be_visible()


def message_item(page: Any, text: str) -> Any:
    return page.locator("li.message").filter(has_text=text)


def post_message(page: Any, conversation: str, text: str) -> None:
    open_conversation(page, conversation)
    page.get_by_placeholder("Write a message…").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Message sent.")
    expect(message_item(page, text)).to_have_count(1)


def flag_message(page: Any, conversation: str, text: str, reason: str = "") -> None:
    open_conversation(page, conversation)
    item = message_item(page, text)
    if reason:
        item.get_by_placeholder("Reason (optional)").fill(reason)
    item.get_by_role("button", name="Flag").click()
    expect(page.locator(".messages")).to_contain_text("Message flagged.")
    expect(message_item(page, text).locator(".badge")).to_have_text("flagged")


def inbox(page: Any) -> Any:
    """The header's live inbox (``{% notification_inbox %}``)."""
    return page.locator("header [data-offchat-inbox]")


def badge(page: Any) -> Any:
    return inbox(page).locator("[data-offchat-badge]")


def wait_for_badge(page: Any, count: int) -> None:
    """Wait, without reloading, until the header's badge shows ``count`` (hidden at 0)."""
    if count:
        expect(badge(page)).to_have_text(str(count), timeout=DELIVERY_TIMEOUT * 1000)
        expect(badge(page)).to_be_visible()
    else:
        expect(badge(page)).to_be_hidden(timeout=DELIVERY_TIMEOUT * 1000)


def open_inbox(page: Any) -> Any:
    """Open the header's drop-down; return its list items."""
    inbox(page).get_by_role("button", name="Notifications").click()
    expect(inbox(page).locator("[data-offchat-panel]")).to_be_visible()
    return inbox(page).locator("li.offchat-item")


#: Matches the class of an unread item, in the drop-down or on the notifications page.
UNREAD = re.compile(r"\b(offchat-)?unread\b")
