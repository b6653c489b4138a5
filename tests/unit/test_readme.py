"""The README's quickstart runs as written, so it cannot drift (issue #12).

Each ``python`` block of the quickstart starts with a comment saying where it
goes (``# mysite/settings.py, at the end``, ``# chat/views.py``,
``# python manage.py shell``...). The tests put every block there, in order:
once in a new ``startproject`` on SQLite, run with ``manage.py``, and once in
this test process, against the test database. Both use the ``sync`` backend,
so no worker is needed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import pytest
from django.apps import apps
from django.test import Client, override_settings

from offchat_notify.models import Event, Notification

README = Path(__file__).resolve().parents[2] / "README.md"
#: The processes step 5 starts, which run until stopped.
LONG_RUNNING = ("runserver", "rundramatiq", "notify_scheduler")
SYNC = 'OFFCHAT_NOTIFY = {"BACKEND": "sync"}  # added by the test: no worker\n'


def quickstart() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the Quickstart section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def where(code: str) -> str:
    """What a block's first line says: ``mysite/settings.py``, ``python manage.py shell``..."""
    first = code.splitlines()[0]
    assert first.startswith("# "), f"a quickstart block must say where it goes:\n{code}"
    return first[2:].split(",")[0]


def test_every_python_block_says_where_it_goes():
    places = [where(code) for lang, code in quickstart() if lang == "python"]
    assert places == [
        "mysite/settings.py",
        "chat/migrations/0001_roles.py",
        "python manage.py shell",
        "chat/views.py",
        "mysite/urls.py",
        "anywhere: a view",
    ]


def run(args: list[str], cwd: Path, **kwargs) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 or kwargs.get("check") is False, done.stdout + done.stderr
    return done.stdout + done.stderr


def console(line: str) -> list[str]:
    """A console line of the README as a command for this interpreter."""
    args = shlex.split(line.split("#")[0])
    if args[0] == "django-admin":
        return [sys.executable, "-m", "django", *args[1:]]
    assert args[0] == "python", line
    return [sys.executable, *args[1:]]


def test_the_quickstart_runs_as_written_in_a_new_project(tmp_path):
    cwd = tmp_path
    shell = [sys.executable, "manage.py", "shell", "--verbosity", "0", "--command"]
    for lang, code in quickstart():
        if lang == "console":
            for line in code.splitlines():
                if line.startswith("cd "):
                    cwd = cwd / line[3:]
                elif any(name in line for name in LONG_RUNNING):
                    continue
                elif "notify_doctor" in line:
                    # No Redis-backed scheduler runs here: read the report, not the status.
                    assert "[ok  ] migrations applied" in run(console(line), cwd, check=False)
                else:
                    run(console(line), cwd)
            if (cwd / "manage.py").exists() and not (cwd / "chat").exists():
                pytest.fail("the quickstart did not create the chat app")
            continue
        target = where(code)
        if target.startswith("python manage.py shell") or target.startswith("anywhere"):
            run([*shell, code], cwd)
            continue
        path = cwd / target
        if "at the end" in code.splitlines()[0] or path.exists():
            path.write_text(path.read_text() + "\n" + code)
        else:
            path.write_text(code)
        if target == "mysite/settings.py":
            # The settings as written pass every check, W010 included; then no worker.
            run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], cwd)
            path.write_text(path.read_text() + SYNC)
    # The views, through Django's test client: bob writes, alice (an admin) reads.
    client_script = """
from django.test import Client
from django.test.utils import setup_test_environment
from django.contrib.auth import get_user_model
from offchat_notify.models import Notification
setup_test_environment()
users = get_user_model().objects
bob, alice = Client(), Client()
bob.force_login(users.get(username="bob"))
alice.force_login(users.get(username="alice"))
assert bob.post("/send/", {"text": "hi"}).status_code == 202
inbox = alice.get("/inbox/").json()
assert inbox["unread"] == 3, inbox  # backup.failed, digest.ready, message.sent
assert inbox["latest"][0] == {"verb": "message.sent", "title": "New message from bob"}, inbox
assert alice.post("/inbox/read/").status_code == 204
assert alice.get("/inbox/").json()["unread"] == 0
verbs = Notification.objects.filter(recipient__username="bob").values_list("event__verb", flat=True)
assert sorted(verbs) == ["digest.ready", "shift.changed"], list(verbs)
print("quickstart ok")
"""
    assert "quickstart ok" in run([*shell, client_script], cwd)


@pytest.mark.django_db(transaction=True)
def test_the_quickstart_blocks_run_against_the_test_database():
    blocks = {where(code): code for lang, code in quickstart() if lang == "python"}
    # The data migration's function creates both Groups
    migration: dict = {}
    exec(blocks["chat/migrations/0001_roles.py"], migration)
    migration["create_roles"](apps, None)
    # The views module, importable as chat.views; the URLconf, as startproject writes it
    views = types.ModuleType("chat.views")
    urls = types.ModuleType("readme_urls")
    exec(
        "from django.contrib import admin\nfrom django.urls import path\n"
        'urlpatterns = [path("admin/", admin.site.urls)]\n',
        urls.__dict__,
    )
    modules = {"chat": types.ModuleType("chat"), "chat.views": views, "readme_urls": urls}
    with (
        mock.patch.dict(sys.modules, modules),
        override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"}, ROOT_URLCONF="readme_urls"),
    ):
        exec(blocks["python manage.py shell"], {})
        exec(blocks["chat/views.py"], views.__dict__)
        exec(blocks["mysite/urls.py"], urls.__dict__)
        exec(blocks["anywhere: a view"], {})
        bob, alice = Client(), Client()
        bob.force_login(Notification.recipient.field.related_model.objects.get(username="bob"))
        alice.force_login(Notification.recipient.field.related_model.objects.get(username="alice"))
        assert bob.post("/send/", {"text": "hi"}).status_code == 202
        inbox = alice.get("/inbox/").json()
        assert inbox["unread"] == 3, inbox
        assert alice.post("/inbox/read/").status_code == 204
        assert alice.get("/inbox/").json()["unread"] == 0
    # The moderator role resolved (the Group exists), and every Event was delivered
    assert set(Event.objects.values_list("state", flat=True)) == {"delivered"}
    assert Event.objects.get(verb="shift.changed").recipient_count == 1
