"""The browser tests' fixtures: Chromium, the example project as run.py starts it, log-ins.

Each test starts ``example_project/run.py`` as a user would, on a free port
with a fresh SQLite database in a temporary directory (never the developer's
``example_project/db.sqlite3``).

Needs the ``playwright`` package (in the ``test`` dependency group) and
Debian's chromium at /usr/bin/chromium (``CHROMIUM_PATH`` to use another).
Playwright's own browser download is never used. Without either, the tests
skip, or fail when the CI environment variable is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, require

from .pages import ACTION_TIMEOUT_MS, PASSWORD, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Seconds for run.py to migrate, seed and answer; then to stop everything.
START_TIMEOUT = 90
STOP_TIMEOUT = 30


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        "Playwright",
        sync_playwright is not None,
        "the playwright package is not installed: pip install playwright "
        "(it is in the test dependency group; never run `playwright install`)",
    )
    require(
        "Chromium",
        os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK),
        f"no browser at {CHROMIUM}: install Debian's chromium package "
        "(apt-get install chromium), or set CHROMIUM_PATH",
    )
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Demo:
    url: str
    mode: str
    log: Path


@pytest.fixture
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    """``run.py`` on a free port and a fresh database; stopped, with all its processes, after.

    Parametrize indirectly with ``"sync"`` (the default: no Redis, in-process
    delivery) or ``"redis"`` (Redis and a separate worker process).
    """
    mode = getattr(request, "param", "sync")
    env = {
        name: value
        for name, value in os.environ.items()
        # The demo's own defaults, whatever this shell has set.
        if not name.startswith("DJANGO_")
        and name not in ("REDIS_URL", "OFFCHAT_BACKEND", "SQLITE_PATH", "DRAMATIQ_NAMESPACE")
    }
    env["PYTHONUNBUFFERED"] = "1"
    namespace = f"offchat-browser-{uuid.uuid4().hex[:12]}"
    if mode == "redis":
        redis_url = request.getfixturevalue("redis_url")  # skips, or fails in CI, without Redis
        env["REDIS_URL"] = redis_url
        env["DRAMATIQ_NAMESPACE"] = namespace  # its own queues: never another demo's worker
    port = _free_port()
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "example_project" / "run.py"),
                "--port",
                str(port),
                "--database",
                str(tmp_path / "db.sqlite3"),
                # Edits to the sources during a run must not restart the server mid-test.
                "--noreload",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in pytest's terminal reaches pytest only
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(url, process, log_path)
        yield Demo(url=url, mode=mode, log=log_path)
    finally:
        leftover = _stop(process)
        if mode == "redis":
            _flush_namespace(env["REDIS_URL"], namespace)
        # Shown by pytest when the test fails.
        print(f"--- run.py output ({mode}) ---\n{log_path.read_text(errors='replace')}")
        assert not leftover, f"run.py left processes running after it stopped: {leftover}"


@pytest.fixture
def log_in(browser: Any, demo: Demo) -> Iterator[Callable[[str], Any]]:
    """Log a demo user in, in a browser context (cookies) of their own; return the page."""
    contexts = []

    def log_in(username: str) -> Any:
        context = browser.new_context(base_url=demo.url)
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        page = context.new_page()
        page.goto("accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("header .user")).to_have_text(username)
        expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
        return page

    try:
        yield log_in
    finally:
        for context in contexts:
            context.close()


# Processes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"run.py exited with code {process.returncode} before serving:\n"
                f"{log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{url}accounts/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"run.py did not answer at {url} within {START_TIMEOUT}s:\n"
                f"{log.read_text(errors='replace')}"
            )
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> list[int]:
    """Ctrl-C run.py, as a user would; return the pids of its processes still running after.

    Those are killed, so that nothing outlives the test, but reported.
    """
    tree = _descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    leftover = [pid for pid in tree if _running(pid)]
    for pid in leftover:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return leftover


def _descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s children, grandchildren... (Linux /proc; elsewhere, none)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = entry.read_text().rsplit(")", 1)[1].split()
            parents[int(entry.parent.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its exit status is left


def _flush_namespace(redis_url: str, namespace: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
