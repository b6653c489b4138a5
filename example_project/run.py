#!/usr/bin/env python3
"""Run the offchat-notify demo: the one command.

    python3 example_project/run.py [--port 8000] [--host 127.0.0.1] [--database PATH] [--noreload]

Migrates the SQLite database, creates the demo users, then serves the site
under ASGI with uvicorn (``example.asgi``, reloading on code changes) and,
when REDIS_URL is set, starts a Dramatiq worker (``manage.py rundramatiq``).
Without REDIS_URL, notifications are delivered in-process by the sync backend
and no broker is needed. Ctrl-C stops everything.

It runs with the interpreter that runs it: Django, dramatiq, django-dramatiq,
uvicorn and offchat-notify (and redis, for REDIS_URL) must be installed
there. The repository's dev.py sets that up.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import vapid_keys  # beside this file
from redact import redact_url  # beside this file

HERE = Path(__file__).resolve().parent
WINDOWS = os.name == "nt"
#: How long children get to stop on their own before they are killed.
STOP_TIMEOUT = 10.0
#: Seconds uvicorn waits for open connections (live streams never end) when stopping.
GRACEFUL_SHUTDOWN = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")
    parser.add_argument(
        "--database",
        type=Path,
        default=None,
        metavar="PATH",
        help="the SQLite database file (default: $SQLITE_PATH, else example_project/db.sqlite3)",
    )
    parser.add_argument(
        "--noreload", action="store_true", help="do not restart the web server on code changes"
    )
    args = parser.parse_args(argv)

    restore = catch_termination()
    try:
        return run(args)
    finally:
        restore()


def run(args: argparse.Namespace) -> int:
    redis_url = os.environ.get("REDIS_URL", "").strip()
    backend = os.environ.get("OFFCHAT_BACKEND", "").strip() or ("dramatiq" if redis_url else "sync")
    problem = find_problem(redis_url, args.host, args.port)
    if problem:
        print(f"run.py: {problem}", file=sys.stderr)
        return 2

    # Always this project's settings, whatever DJANGO_SETTINGS_MODULE the shell has.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "example.settings"}
    if args.database is not None:
        env["SQLITE_PATH"] = str(args.database.resolve())
    database = env.get("SQLITE_PATH", "").strip() or str(HERE / "db.sqlite3")
    # Emails are written as files beside the database, one per message.
    env.setdefault("EXAMPLE_EMAIL_DIR", str(Path(database).resolve().parent / "sent_emails"))
    env["EXAMPLE_SITE_URL"] = f"http://{args.host}:{args.port}"
    # Web push: the demo's VAPID key pair, made on first run beside the database.
    env.update(vapid_keys.ensure(Path(database).resolve().parent))
    print(f"Database: {database} (SQLite; migrating)", flush=True)
    if manage(["migrate", "--noinput", "--verbosity", "0"], env) or manage(["seed_demo"], env):
        print("run.py: setting up the database failed (see above).", file=sys.stderr)
        return 1

    url = f"http://{args.host}:{args.port}/"
    print()
    for line in describe_mode(redis_url, backend):
        print(line)
    print()
    print(f"Open {url}")
    print("  Log in as carol and post a message in #general: alice (admin) is notified.")
    print("  Log in as dave and flag carol's message: bob (moderator) is notified,")
    print(f"  and emailed: each email is a file in {env['EXAMPLE_EMAIL_DIR']}")
    print("  Mute what you don't want to hear of, or turn on push: Preferences, in the header.")
    print("  Keep alice's page open in another browser: her badge updates without a reload.")
    print("Press Ctrl-C to stop.\n", flush=True)

    children: list[Child] = []
    try:
        # uvicorn's reloader runs the server in a child process: the whole group
        # is signalled.
        web = web_command(args.host, args.port, reload=not args.noreload)
        children.append(Child.start("web", web, env, signal_group=True))
        if redis_url:
            # dramatiq's main process stops its worker processes itself, and a
            # second SIGTERM makes them quit at once: signal the main one only.
            worker = manage_command("rundramatiq", "--processes", "1", "--threads", "2")
            children.append(Child.start("worker", worker, env, signal_group=False))
        # The periodic jobs: the relay (every 5 s) and retention (nightly). With
        # Redis it holds the scheduler lock and a worker runs the jobs; without,
        # it runs them itself.
        scheduler = manage_command("notify_scheduler")
        children.append(Child.start("scheduler", scheduler, env, signal_group=False))
        while True:
            for child in children:
                code = child.process.poll()
                if code is not None:
                    print(f"\nrun.py: the {child.name} process exited (code {code}); stopping.")
                    return code if code > 0 else 1
            time.sleep(0.3)
    except KeyboardInterrupt:
        print("\nrun.py: stopping…", flush=True)
        return 0
    finally:
        stop_all(children)


def web_command(host: str, port: int, *, reload: bool) -> list[str]:
    """uvicorn serving ``example.asgi:application``: ASGI, for the live inbox stream."""
    command = [
        sys.executable, "-m", "uvicorn", "example.asgi:application",
        "--host", host, "--port", str(port),
        # Django has no lifespan handler; say so rather than let uvicorn probe it.
        "--lifespan", "off",
        "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN),
    ]  # fmt: skip
    if reload:
        command += ["--reload", "--reload-dir", str(HERE)]
    return command


def manage_command(*arguments: str) -> list[str]:
    return [sys.executable, "manage.py", *arguments]


def describe_mode(redis_url: str, backend: str) -> list[str]:
    """The start banner's lines about the backend: which mode, and how to get the other."""
    if redis_url:
        lines = [
            f"Mode: Redis ({redact_url(redis_url)}), backend {backend}.",
            "  The web server writes each Event; a separate Dramatiq worker process",
            "  (manage.py rundramatiq) delivers it, and Redis pub/sub tells the web server",
            "  which open pages to update. Unset REDIS_URL to run without Redis.",
            "  manage.py notify_scheduler runs the relay and retention (a worker runs them).",
        ]
    else:
        lines = [
            f"Mode: no Redis (REDIS_URL is not set), backend {backend}, in-process.",
            "  Notifications are delivered inside the web server right after each commit,",
            "  and pushed to open pages by the same process: no broker, no worker.",
            "  Set REDIS_URL=redis://127.0.0.1:6379/0 to use Redis and a Dramatiq worker.",
            "  manage.py notify_scheduler runs the relay and retention itself.",
        ]
        if backend == "dramatiq":
            lines.append(
                "  Warning: OFFCHAT_BACKEND=dramatiq without REDIS_URL sends to an in-memory "
                "StubBroker that no worker reads: events will stay pending."
            )
    return lines


def find_problem(redis_url: str, host: str, port: int) -> str | None:
    """A sentence saying why the demo cannot start, or None."""
    needed = ["django", "dramatiq", "django_dramatiq", "uvicorn", "offchat_notify"]
    if redis_url:
        needed.append("redis")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed for {sys.executable}. From the repository "
            'root, run python3 dev.py example, or: pip install -e ".[redis]" uvicorn'
        )
    if redis_url:
        parts = urlsplit(redis_url)
        if parts.scheme in ("redis", "rediss"):
            try:
                address = (parts.hostname or "127.0.0.1", parts.port or 6379)
                socket.create_connection(address, timeout=2).close()
            except ValueError:  # its message would quote the "port": maybe the password
                return f"REDIS_URL is {redact_url(redis_url)}, which is not a valid URL."
            except OSError as e:
                return (
                    f"REDIS_URL is {redact_url(redis_url)}, but nothing answers at "
                    f"{address[0]}:{address[1]} ({e}). Start Redis, or unset REDIS_URL "
                    "to run with the in-process sync backend."
                )
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        if not WINDOWS:  # as runserver does; on Windows the option means something else
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            return f"cannot serve on {host}:{port} ({e}). Try another port: --port {port + 1}"
    return None


def manage(arguments: list[str], env: dict[str, str]) -> int:
    """Run a management command to completion in the foreground; return its exit code."""
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=HERE, env=env).returncode


class Child:
    """A long-running command (uvicorn, a manage.py command) in its own process group.

    Its own group, so that its own children (uvicorn's server under its
    reloader, dramatiq's worker processes) can be waited for, and killed if
    they hang: no orphans. run.py alone receives Ctrl-C and passes it on.
    """

    def __init__(self, name: str, process: subprocess.Popen[bytes], signal_group: bool) -> None:
        self.name = name
        self.process = process
        self.signal_group = signal_group

    @classmethod
    def start(
        cls, name: str, command: list[str], env: dict[str, str], *, signal_group: bool
    ) -> Child:
        if WINDOWS:
            options: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        else:
            options = {"start_new_session": True}
        process = subprocess.Popen(
            command,
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            **options,
        )
        return cls(name, process, signal_group)

    def terminate(self) -> None:
        """Ask it to stop: SIGTERM to it or its group (CTRL_BREAK to the group on Windows)."""
        with contextlib.suppress(OSError):  # already gone
            if WINDOWS:
                if self.process.poll() is None:
                    self.process.send_signal(signal.CTRL_BREAK_EVENT)
            elif self.signal_group:
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.terminate()

    def kill(self) -> None:
        """Stop the whole group now."""
        if WINDOWS:
            subprocess.run(
                ["taskkill", "/F", "/T", "/PID", str(self.process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            with contextlib.suppress(OSError):  # already gone
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stopped(self) -> bool:
        """Whether the process, and on POSIX every process of its group, has exited."""
        if self.process.poll() is None:
            return False
        if WINDOWS:
            return True
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def stop_all(children: list[Child]) -> None:
    """Terminate every child, wait for them, kill whatever is left after STOP_TIMEOUT.

    A second Ctrl-C while waiting kills at once.
    """
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    try:
        while time.monotonic() < deadline and not all(child.stopped() for child in children):
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    for child in children:
        if not child.stopped():
            print(f"run.py: the {child.name} process did not stop in time; killing it.")
            child.kill()


def catch_termination() -> Callable[[], None]:
    """Treat SIGTERM (and SIGHUP, SIGBREAK) like Ctrl-C, so children are stopped too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    names = ["SIGTERM", "SIGHUP", "SIGBREAK"]
    previous = {}
    for name in names:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, interrupt)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during migrate or seed_demo: nothing else runs yet
        sys.exit(130)
