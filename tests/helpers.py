"""Helpers for tests that need services and worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


def require(service: str, available: bool, how: str) -> None:
    """Skip (laptop) or fail (CI) a test whose service is missing."""
    if available:
        return
    reason = f"{service} is not available: {how}"
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


class WorkerProcess:
    """A real ``manage.py rundramatiq`` worker, in its own process group."""

    def __init__(self, broker: str, database: str, log: Path) -> None:
        self.broker = broker
        self.database = database
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TEST_BROKER": self.broker,
            "TEST_REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
            "OFFCHAT_WORKER_DATABASE": self.database,
            "DATABASE_URL": settings.DATABASE_URL,
            # The repository root (for tests.settings), never src/: workers, like
            # the tests, use the installed package.
            "PYTHONPATH": str(ROOT),
        }
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "rundramatiq",
                "--processes",
                "1",
                "--threads",
                "2",
                "--path",
                str(ROOT),
                "--skip-logging",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        self.proc = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    on_fail: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}. {on_fail()}")
        time.sleep(0.1)


def broker_middleware() -> list[Any]:
    """The middleware of the test settings' DRAMATIQ_BROKER, as instances."""
    from django_dramatiq.utils import load_middleware

    return [load_middleware(path) for path in settings.DRAMATIQ_BROKER["MIDDLEWARE"]]
