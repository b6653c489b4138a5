"""A fresh SQLite project with the default worker (2 processes x 8 threads), end to end.

``startproject`` gives everyone SQLite. With the options W010 recommends the
worker delivers without a single lock error; with Django's defaults it
delivers too, and the lock waits it meets are WARNING lines, retried quietly:
never an ERROR, never a traceback (issue #12).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers import ROOT, WorkerProcess, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.worker]

ADMINS = 50
EVENTS = 30
RECOMMENDED = {"transaction_mode": "IMMEDIATE", "timeout": 20}

SETUP = f"""
from django.contrib.auth.models import Group
from tests.testapp.models import User
admin, _ = Group.objects.get_or_create(name="admin")
admin.user_set.add(*User.objects.bulk_create(User(username=f"admin{{i}}") for i in range({ADMINS})))
"""
NOTIFY = f"""
from offchat_notify import notify_admins
for i in range({EVENTS}):
    notify_admins("message.sent", title=f"Message {{i}}")
"""


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def states(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("SELECT state, count(*) FROM offchat_notify_event GROUP BY state")
        return dict(rows.fetchall())


@pytest.mark.parametrize(
    "options", [pytest.param(RECOMMENDED, id="recommended"), pytest.param({}, id="defaults")]
)
def test_the_default_worker_on_sqlite_delivers_without_an_error(redis_url, tmp_path, options):
    # Given a fresh SQLite project: migrated, 50 admins, the dramatiq backend on Redis
    path = tmp_path / "db.sqlite3"
    queue = f"offchat_test_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{path}",
        "OFFCHAT_WORKER_DATABASE": str(path),
        "TEST_DB_OPTIONS": json.dumps(options),
        "TEST_BROKER": "redis",
        "TEST_REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
        "TEST_OFFCHAT_NOTIFY": json.dumps({"BACKEND": "dramatiq", "OPTIONS": {"QUEUE": queue}}),
        "TEST_LOG_LEVELS": "1",
    }
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "shell", "--command", SETUP)
    # And 30 Events waiting for the first worker
    manage(env, "shell", "--command", NOTIFY)
    # When the default worker starts: 2 processes x 8 threads, all claiming at once
    worker = WorkerProcess(
        "redis", str(path), tmp_path / "worker.log", env=env, processes=2, threads=8
    ).start()
    try:
        wait_for(
            lambda: states(path) == {"delivered": EVENTS},
            timeout=120,
            what=f"{EVENTS} Events to be delivered",
            on_fail=lambda: f"{states(path)}\nWorker output:\n{worker.output()}",
        )
    finally:
        worker.stop()
    # Then every admin has every notification
    with closing(sqlite3.connect(path)) as db:
        (rows,) = db.execute("SELECT count(*) FROM offchat_notify_notification").fetchone()
    assert rows == ADMINS * EVENTS
    # And the worker logged no ERROR and no traceback
    output = worker.output()
    lines = output.splitlines()
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], output
    assert "Traceback" not in output, output
    # And the system check told the project with Django's defaults what to set
    assert ("offchat_notify.W010" in output) is (options != RECOMMENDED), output
    if options == RECOMMENDED:
        assert "database is locked" not in output, output
