"""The example's Preferences page and its emails, in a real browser.

bob, the demo's only moderator, mutes the email of flags on the Preferences
page, gets a flag in his inbox but no email, unmutes, gets the next flag by
email, and unsubscribes again through the email's one-click link in a browser
that is not logged in. The emails are the files that Django's file backend
writes where run.py's start banner says. Fixtures in conftest.py.
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import re
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from .conftest import Demo
from .pages import (
    DELIVERY_TIMEOUT,
    expect,
    flag_message,
    open_inbox,
    post_message,
    wait_for_badge,
)

pytestmark = pytest.mark.browser

BOB = "bob@example.com"
FLAGGED = "message.flagged"
#: What Django's file backend writes after each message of a file.
SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def test_moderator_mutes_then_unsubscribes_from_flag_emails(
    demo: Demo, browser: Any, log_in: Callable[[str], Any]
) -> None:
    tag = uuid.uuid4().hex[:6]
    first, second = f"First spam ({tag})", f"Second spam ({tag})"
    folder = email_folder(demo)
    carol = log_in("carol")
    post_message(carol, "general", first)
    post_message(carol, "general", second)

    # Given bob, the only moderator, has muted the email of flags.
    bob = log_in("bob")
    open_preferences(bob)
    expect(email_box(bob)).to_be_checked()
    set_email(bob, on=False)
    bob.reload()
    expect(email_box(bob)).not_to_be_checked()
    # Only that box changed.
    expect(bob.get_by_label(f"{FLAGGED} by Push")).to_be_checked()
    expect(bob.get_by_label("message.sent by Email")).to_be_checked()

    # When dave flags a message, bob's inbox has it, on the page he has open.
    dave = log_in("dave")
    flag_message(dave, "general", first, reason=f"while-muted-{tag}")
    wait_for_badge(bob, 1)
    items = open_inbox(bob)
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("dave flagged a message from carol in #general")

    # When bob unmutes, and dave flags another message,
    open_preferences(bob)
    set_email(bob, on=True)
    bob.reload()
    expect(email_box(bob)).to_be_checked()
    flag_message(dave, "general", second, reason=f"after-unmuting-{tag}")

    # Then that flag reaches bob by email, and the first one never did: it was
    # delivered first (his inbox had it before he unmuted), yet its email is
    # not there now that the later one is.
    message = wait_for_email(folder, f"after-unmuting-{tag}")
    assert [m["Message-ID"] for m in emails_to(folder, BOB)] == [message["Message-ID"]]
    assert not [m for m in emails(folder) if f"while-muted-{tag}" in body(m)]
    assert message["To"] == BOB
    assert "flagged" in message["Subject"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Strip: a long header may be folded onto a second line (Django 5.2 folds at 78).
    found = re.fullmatch(r"<(http://[^>\s]+)>", (message["List-Unsubscribe"] or "").strip())
    assert found, f"no http URL in List-Unsubscribe: {message['List-Unsubscribe']!r}"
    link = found.group(1)
    assert link.startswith(demo.url), (link, demo.url)
    assert link in body(message)  # and the text says so, for a person

    # When someone who is not logged in follows the link (GET changes nothing)
    stranger = browser.new_context()
    try:
        page = stranger.new_page()
        page.goto(link)
        expect(page.get_by_text(f"Stop email notifications for “{FLAGGED}”?")).to_be_visible()
        bob.reload()
        expect(email_box(bob)).to_be_checked()
        # and confirms,
        page.get_by_role("button", name="Unsubscribe").click()
        expect(
            page.get_by_text(f"You will no longer get email notifications for “{FLAGGED}”.")
        ).to_be_visible()
        assert not [c for c in stranger.cookies() if c["name"] == "sessionid"]
    finally:
        stranger.close()

    # Then bob's Preferences page shows the email of flags muted.
    open_preferences(bob)
    expect(email_box(bob)).not_to_be_checked()
    expect(bob.get_by_label(f"{FLAGGED} by Push")).to_be_checked()


def test_push_button_says_why_it_cannot_turn_on(demo: Demo, log_in: Callable[[str], Any]) -> None:
    """Headless Chromium has no push service: subscribing fails, and the page says so."""
    if importlib.util.find_spec("py_vapid") is None:
        pytest.skip("py-vapid is not installed (the webpush extra): the demo runs without push")
    bob = log_in("bob")
    bob.context.grant_permissions(["notifications"])
    open_preferences(bob)
    button = bob.get_by_role("button", name="Turn on notifications in this browser")
    expect(button).to_be_visible()
    expect(bob.get_by_role("alert")).to_have_count(0)

    button.click()

    expect(bob.get_by_role("alert")).to_contain_text("Could not turn on notifications: ")
    expect(button).to_be_enabled()  # to try again
    expect(button).to_have_text("Turn on notifications in this browser")


# Steps


def open_preferences(page: Any) -> None:
    page.locator("header").get_by_role("link", name="Preferences").click()
    expect(page.get_by_role("heading", name="Preferences")).to_be_visible()


def email_box(page: Any) -> Any:
    return page.get_by_label(f"{FLAGGED} by Email")


def set_email(page: Any, *, on: bool) -> None:
    email_box(page).set_checked(on)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Preferences saved.")
    if on:
        expect(email_box(page)).to_be_checked()
    else:
        expect(email_box(page)).not_to_be_checked()


# The emails


def email_folder(demo: Demo) -> Path:
    """Where run.py's banner says the emails go: beside the database (conftest's tmp_path)."""
    found = re.search(r"each email is a file in (\S+)", demo.log.read_text(errors="replace"))
    assert found, "run.py's start banner does not say where the emails go"
    folder = Path(found.group(1))
    assert folder == demo.log.parent / "sent_emails", folder
    return folder


def emails(folder: Path) -> list[EmailMessage]:
    """Every message written so far (one that is still being written is left out)."""
    found = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        for chunk in path.read_bytes().split(SEPARATOR)[:-1]:
            message = email.message_from_bytes(chunk, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def emails_to(folder: Path, address: str) -> list[EmailMessage]:
    return [message for message in emails(folder) if message["To"] == address]


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


def wait_for_email(folder: Path, text: str) -> EmailMessage:
    """The first email whose text holds ``text``, once the file backend has written it."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        for message in emails(folder):
            if text in body(message):
                return message
        if time.monotonic() > deadline:
            written = sorted(path.name for path in folder.glob("*")) if folder.is_dir() else []
            pytest.fail(f"no email with {text!r} in {folder} after {DELIVERY_TIMEOUT}s: {written}")
        time.sleep(0.2)
