"""The reference pages keep up with the code: settings, check ids, commands, metrics.

A drift guard: adding a setting, a check, a management command or a metric
without documenting it fails here, before a user meets it undocumented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offchat_notify.backends.dramatiq.options import DEFAULTS as DRAMATIQ_OPTIONS
from offchat_notify.conf import DEFAULTS, RENAMED

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "offchat_notify"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def check_ids() -> list[str]:
    """Every check id the package can report: checks.py, and conf.py for E001 and E002."""
    source = "".join(read(p) for p in sorted(PACKAGE.rglob("*.py")))
    return sorted(set(re.findall(r"offchat_notify\.[EW]\d{3}", source)))


def command_names() -> list[str]:
    return sorted(
        p.stem
        for p in (PACKAGE / "management" / "commands").glob("*.py")
        if not p.stem.startswith("_")
    )


def metric_names() -> list[str]:
    return sorted(set(re.findall(r'"(offchat_notify_[a-z_]+)"', read(PACKAGE / "metrics.py"))))


def test_the_sources_are_found() -> None:
    """Guards the guards: an empty list would make the tests below pass vacuously."""
    # 19 top-level keys since 0.2: QUEUE, DISPATCH and ON_BROKER_ERROR became
    # options of the dramatiq backend (in OPTIONS, a new key) and CHUNK_SIZE was
    # renamed PAGE_SIZE. The renamed keys are guarded below, on their own.
    assert len(DEFAULTS) >= 19
    assert {"CHUNK_SIZE", "QUEUE"} <= set(RENAMED)
    assert {"QUEUE", "DISPATCH", "ON_BROKER_ERROR"} <= set(DRAMATIQ_OPTIONS)
    assert "offchat_notify.E001" in check_ids()
    assert {"offchat_notify.E010", "offchat_notify.W002"} <= set(check_ids())
    assert {"notify_doctor", "notify_rules", "notify_status"} <= set(command_names())
    assert "offchat_notify_events_delivered_total" in metric_names()


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_setting_is_documented(key: str) -> None:
    text = read(DOCS / "settings.rst")
    # A definition-list term of its own, and the key in the defaults block.
    assert re.search(rf"^``{key}``$", text, re.M), f"docs/settings.rst has no entry for {key}"
    assert f'"{key}":' in text, f"the defaults block of docs/settings.rst lacks {key}"


@pytest.mark.parametrize("option", sorted(DRAMATIQ_OPTIONS))
def test_dramatiq_option_is_documented(option: str) -> None:
    _, found, section = read(DOCS / "settings.rst").partition(".. _settings-dramatiq-options:")
    assert found, "docs/settings.rst has no section on the dramatiq backend's options"
    assert re.search(rf"^``{option}``$", section, re.M), (
        f"docs/settings.rst does not document the dramatiq backend's option {option}"
    )


@pytest.mark.parametrize("key", sorted(RENAMED))
def test_renamed_setting_is_documented(key: str) -> None:
    _, found, renamed = read(DOCS / "settings.rst").partition(".. _settings-renamed:")
    assert found, "docs/settings.rst has no section on the renamed keys"
    assert f"``{key}``" in renamed, f"docs/settings.rst does not list the renamed key {key}"


@pytest.mark.parametrize("check_id", check_ids())
def test_check_is_documented(check_id: str) -> None:
    text = read(DOCS / "checks.rst")
    code = check_id.rsplit(".", 1)[1]
    assert f".. _check-{code}:" in text, f"docs/checks.rst has no label for {check_id}"
    assert re.search(rf"^``{re.escape(check_id)}``: ", text, re.M), (
        f"docs/checks.rst has no entry for {check_id}"
    )


@pytest.mark.parametrize("command", command_names())
def test_command_is_documented(command: str) -> None:
    text = read(DOCS / "commands.rst")
    title = f"``{command}``"
    assert re.search(rf"^{re.escape(title)}\n-{{{len(title)}}}$", text, re.M), (
        f"docs/commands.rst has no section for {command}"
    )


@pytest.mark.parametrize("metric", metric_names())
def test_metric_is_documented(metric: str) -> None:
    assert f"``{metric}``" in read(DOCS / "operations.rst"), (
        f"docs/operations.rst does not list the metric {metric}"
    )
