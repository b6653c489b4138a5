"""Run the periodic jobs (the relay, retention, and the project's own) on APScheduler.

Start one per machine, or several for high availability: a Redis lock makes
exactly one of them active; the others wait on standby and take over when it
dies. Jobs only enqueue: under the dramatiq backend a worker runs them.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from offchat_notify.conf import get_settings
from offchat_notify.exceptions import NotifyConfigurationError
from offchat_notify.schedule.jobs import get_jobs
from offchat_notify.scheduler.lock import get_lock
from offchat_notify.scheduler.loop import LeaderLoop


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--list", action="store_true", help="Print the jobs and their next run times, and exit."
        )

    def handle(self, *args: Any, list: bool, **options: Any) -> None:
        try:
            import apscheduler  # noqa: F401
        except ImportError:
            raise CommandError(
                'notify_scheduler needs APScheduler: pip install "offchat-notify[scheduler]".'
            ) from None
        try:
            jobs = get_jobs()
            lock = get_lock()
        except NotifyConfigurationError as e:
            raise CommandError(str(e)) from e
        try:
            if list:
                self.list_jobs(jobs, lock)
                return
            verbose = options["verbosity"] >= 2  # -v 2: a line for every tick
            loop = LeaderLoop(jobs, lock, log=self.stdout.write, verbose=verbose)
            self.install_signal_handlers(loop.stop)
            self.launch(loop)
        finally:
            lock.close()

    def list_jobs(self, jobs: dict[str, Any], lock: Any) -> None:
        now = timezone.localtime()
        if not jobs:
            self.stdout.write("No periodic jobs.")
        for name, job in sorted(jobs.items()):
            next_run = timezone.localtime(job.trigger().get_next_fire_time(None, now))
            self.stdout.write(
                f"{name}: {job.task}, {job.describe()}, next run {next_run:%Y-%m-%d %H:%M:%S %Z}"
            )
        grace = timedelta(seconds=get_settings().SCHEDULER_GRACE)
        self.stdout.write(f"Lock: {lock}. Missed runs within {grace} coalesce into one.")

    def install_signal_handlers(self, stop: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: stop(signal.Signals(signum).name))

    def launch(self, loop: LeaderLoop) -> None:
        """The blocking part; tests patch it."""
        loop.run()
