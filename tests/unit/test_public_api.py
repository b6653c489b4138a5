"""The public API is what DESIGN.md promises, and importing it is free of side effects."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_version_matches_the_distribution():
    import re

    pyproject = (ROOT / "pyproject.toml").read_text()
    (version,) = re.findall(r'^version = "([^"]+)"$', pyproject, flags=re.MULTILINE)
    assert offchat_notify.__version__ == version


def test_periodic_is_exported_from_the_package():
    from offchat_notify.scheduler import periodic

    assert offchat_notify.periodic is periodic
    assert "periodic" in offchat_notify.__all__


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("offchat_notify.brokers", "RedisBroker", "offchat_notify.backends.dramatiq.broker"),
        ("offchat_notify.backends.sender", "flush", "offchat_notify.backends.dramatiq.sender"),
        ("offchat_notify.backends.sender", "sender", "offchat_notify.backends.dramatiq.sender"),
    ],
)
def test_moved_names_still_work_with_a_deprecation_warning(old, name, new):
    import importlib

    from offchat_notify.exceptions import NotifyDeprecationWarning

    module = importlib.import_module(old)
    with pytest.warns(NotifyDeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        module.nothing_here  # noqa: B018


def test_paths_the_docs_show_keep_working():
    from offchat_notify.roles import BaseRoles, FieldRoles, FlagRoles, GroupRoles, ListedRoles
    from offchat_notify.scheduler import periodic

    assert all([BaseRoles, FieldRoles, FlagRoles, GroupRoles, ListedRoles, periodic])
