"""The example project's admin: its action gated on a permission, no empty Task admin.

The example project is a Django project of its own (``example_project``), so
each test runs a short script under its settings, in a subprocess, on a fresh
SQLite file, with Django's test Client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

EXAMPLE = ROOT / "example_project"

SCRIPT = r"""
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()  # response.context, and "testserver" in ALLOWED_HOSTS
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from chat.models import Conversation, Flag, Message

for name in ("admin", "moderator", "member"):
    Group.objects.get_or_create(name=name)
author = User.objects.create_user("author", password="pw")
room = Conversation.objects.create(name="general")
message = Message.objects.create(conversation=room, sender=author, text="hi")
Flag.objects.create(message=message, flagged_by=author, reason="spam")


def run_clear_flags(*codenames):
    user = User.objects.create_user("staff-" + "-".join(codenames), password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    page = client.get("/admin/chat/message/")
    form = page.context["action_form"]
    offered = [] if form is None else [n for n, _ in form.fields["action"].choices if n]
    client.post(
        "/admin/chat/message/", {"action": "clear_flags", "_selected_action": [message.pk]}
    )
    return {"offered": "clear_flags" in offered, "flags_left": Flag.objects.count()}


import django_dramatiq.models
result = {
    "viewer": run_clear_flags("view_message", "view_flag"),
    "moderator": run_clear_flags("view_message", "view_flag", "delete_flag"),
    "task_admin": admin.site.is_registered(django_dramatiq.models.Task),
}
print("RESULT " + json.dumps(result))
"""


def run_example(script: str, tmp_path: Path, **extra_env: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "OFFCHAT_BACKEND", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        SQLITE_PATH=str(tmp_path / "example.sqlite3"),
        PYTHONPATH=str(EXAMPLE),
        **extra_env,
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the script found: one run (a migrate) for the tests of this module."""
    return run_example(SCRIPT, tmp_path_factory.mktemp("example"))


def test_clear_flags_needs_the_permission_to_delete_flags(result):
    assert result["viewer"] == {"offered": False, "flags_left": 1}
    assert result["moderator"] == {"offered": True, "flags_left": 0}


def test_the_always_empty_dramatiq_task_admin_is_not_shown(result):
    assert result["task_admin"] is False
