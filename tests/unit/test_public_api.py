"""The public API is what DESIGN.md promises, and importing it is free of side effects."""

from __future__ import annotations

import subprocess
import sys

import offchat_notify
from tests.helpers import ROOT


def test_all_lists_the_documented_names():
    assert set(offchat_notify.__all__) >= {
        "notify",
        "notify_admins",
        "send_bulk_notification",
        "Audience",
        "NotifyError",
        "InvalidNotification",
        "NotifyConfigurationError",
    }
    for name in offchat_notify.__all__:
        assert getattr(offchat_notify, name) is not None


def test_importing_the_package_touches_no_settings_or_models():
    # In a fresh interpreter with no settings configured at all.
    code = (
        "import sys, offchat_notify;"
        "from offchat_notify import Audience;"
        "assert 'offchat_notify.models' not in sys.modules;"
        "assert 'offchat_notify.tasks' not in sys.modules;"
        "print('ok')"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "tests", env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_version():
    assert offchat_notify.__version__ == "0.1.0"
