"""The example project's email: a flag emails the moderators, who can mute it on a page.

Like test_example_admin, a script runs under the example's own settings in a
subprocess, on a fresh SQLite file, with Django's test Client. Emails are
files in EXAMPLE_EMAIL_DIR (the example's file backend), as run.py sets up.
"""

from __future__ import annotations

import json
from email import message_from_string

import pytest

from tests.unit.test_example_admin import EXAMPLE, run_example

SCRIPT = r"""
import json, os, pathlib, django
django.setup()
# No setup_test_environment(): it would swap the example's file email backend
# for locmem. The Client says it is 127.0.0.1, one of the ALLOWED_HOSTS.
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import Group, User
from django.test import Client
from chat.models import Conversation, Flag, Message

outbox = pathlib.Path(os.environ["EXAMPLE_EMAIL_DIR"])
def emails():
    return sorted(p.read_text() for p in outbox.glob("*")) if outbox.exists() else []

groups = {n: Group.objects.get_or_create(name=n)[0] for n in ("admin", "moderator", "member")}
bob = User.objects.create_user("bob", email="bob@example.com", password="pw")
bob.groups.add(groups["moderator"])
dave = User.objects.create_user("dave", email="dave@example.com", password="pw")
dave.groups.add(groups["member"])
room = Conversation.objects.create(name="general")
message = Message.objects.create(conversation=room, sender=dave, text="hi")

Flag.objects.create(message=message, flagged_by=dave, reason="spam <b>now</b>")
first = emails()

bob_client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
bob_client.force_login(bob)
page = bob_client.get("/preferences/")
token = page.cookies["csrftoken"].value
refused = bob_client.post("/preferences/", {}).status_code  # no CSRF token
saved = bob_client.post(
    "/preferences/",
    {"csrfmiddlewaretoken": token, "message.sent:email": "on"},  # message.flagged unticked
).status_code
second = Message.objects.create(conversation=room, sender=dave, text="hi again")
Flag.objects.create(message=second, flagged_by=dave, reason="again")
after_mute = emails()
print("RESULT " + json.dumps({
    "first": first, "after_mute": after_mute, "page": page.status_code,
    "refused": refused, "saved": saved,
}))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    where = tmp_path_factory.mktemp("example-email")
    return run_example(SCRIPT, where, EXAMPLE_EMAIL_DIR=str(where / "sent"))


def test_a_flag_emails_the_moderator_with_an_unsubscribe_link(result):
    (text,) = result["first"]
    email = message_from_string(text)
    assert email["To"] == "bob@example.com"
    assert email["Subject"].startswith("dave flagged a message")
    link = " ".join(email["List-Unsubscribe"].split())
    assert link.startswith("<http://127.0.0.1:8000/api/notifications/unsubscribe/")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "spam <b>now</b>" in text  # the plain text part is not HTML-escaped


def test_the_preferences_page_mutes_the_email_and_needs_csrf(result):
    assert result["page"] == 200
    assert result["refused"] == 403
    assert result["saved"] == 302
    assert len(result["after_mute"]) == 1  # the second flag sent no email


PUSH_SCRIPT = r"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.test import Client

bob = User.objects.create_user("bob", email="bob@example.com", password="pw")
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(bob)
worker = client.get("/sw.js")
page = client.get("/preferences/").content.decode()
key = client.get("/api/notifications/push/key/").json()
print("RESULT " + json.dumps({
    "worker": worker.status_code, "allowed": worker["Service-Worker-Allowed"],
    "worker_type": worker["Content-Type"], "button": "data-offchat-push" in page,
    "key": key,
}))
"""


def test_with_a_vapid_pair_the_example_serves_its_worker_the_button_and_the_key(tmp_path):
    import sys

    sys.path.insert(0, str(EXAMPLE))
    try:
        import vapid_keys
    finally:
        sys.path.remove(str(EXAMPLE))
    keys = vapid_keys.ensure(tmp_path)
    assert keys, "py-vapid is in the test dependencies"
    assert vapid_keys.ensure(tmp_path) == keys  # made once, then kept
    result = run_example(PUSH_SCRIPT, tmp_path, **keys)
    assert result["worker"] == 200
    assert result["allowed"] == "/"
    assert result["worker_type"].startswith("text/javascript")
    assert result["button"] is True
    assert keys["EXAMPLE_VAPID_PUBLIC_KEY"] in json.dumps(result["key"])
