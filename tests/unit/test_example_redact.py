"""example_project/run.py never prints REDIS_URL's password (issue #12, item 7)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"


@pytest.fixture(scope="module")
def run_py():
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield importlib.import_module("run")
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("run", None)
        sys.modules.pop("redact", None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:p@ss@10.0.0.5:6379/0", "redis://user:***@10.0.0.5:6379/0"),
        ("redis://:secret@10.0.0.5/0?socket_timeout=1", "redis://:***@10.0.0.5/0?socket_timeout=1"),
        ("redis://10.0.0.5/0?password=secret&db=1", "redis://10.0.0.5/0?password=***&db=1"),
        ("rediss://u:x@h/0?Password=secret", "rediss://u:***@h/0?Password=***"),
        ("redis://:pa?ss@host", "redis://:***@host"),
        ("redis://host/0?client_name=a@b", "redis://host/0?client_name=a@b"),
        ("user:secret@host:6379", "user:***@host:6379"),  # no scheme
        ("secret@host", "***@host"),
        ("", ""),
    ],
)
def test_redact_url_hides_the_password_and_never_raises(run_py, url, shown):
    assert run_py.redact_url(url) == shown


def test_the_banner_and_the_problems_show_the_url_without_its_password(run_py):
    url = "redis://user:p@ss@127.0.0.1:1/0"  # port 1: nothing answers
    banner = "\n".join(run_py.describe_mode(url, "dramatiq"))
    assert "p@ss" not in banner
    assert "redis://user:***@127.0.0.1:1/0" in banner
    problem = run_py.find_problem(url, "127.0.0.1", 0)
    assert problem.startswith("REDIS_URL is redis://user:***@127.0.0.1:1/0, but nothing answers")
    assert "p@ss" not in problem
    # A password that breaks the URL (an unencoded "?") is not quoted by a port error either.
    problem = run_py.find_problem("redis://:s3cr?et@host", "127.0.0.1", 0)
    assert problem == "REDIS_URL is redis://:***@host, which is not a valid URL."
