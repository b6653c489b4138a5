"""Show the notification pipeline: broker and queues, Events by state, jobs, scheduler, rate."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from offchat_notify.backends import get_backend
from offchat_notify.ops.status import Status, snapshot


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--watch",
            type=float,
            nargs="?",
            const=2.0,
            default=None,
            metavar="SECONDS",
            help="Refresh every SECONDS (default 2) until Ctrl-C.",
        )

    def handle(self, *args: Any, json: bool, watch: float | None, **options: Any) -> None:
        while True:
            status = snapshot()
            if json:
                self.stdout.write(_json(status))
            else:
                if watch:
                    self.stdout.write("\x1b[2J\x1b[H", ending="")
                self.stdout.write(self.render(status))
            if not watch:
                return
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                return

    def render(self, s: Status) -> str:
        out = [self.style.MIGRATE_HEADING(f"offchat-notify status at {s.taken_at}")]
        out.append(f"Backend: {s.backend}")
        if s.broker is None:
            out.append(
                "Queue: not reported by this backend"
                if get_backend().runs_in_worker
                else "Broker: none (the backend delivers in-process)"
            )
        elif not s.broker.reachable:
            out.append(
                self.style.ERROR(f"Broker: {s.broker.kind}, NOT REACHABLE: {s.broker.error}")
            )
        else:
            connected = (
                ""
                if s.broker.connected is None
                else f", {s.broker.connected} process(es) connected"
            )
            out.append(f"Broker: {s.broker.kind}, reachable{connected}")
            for q in s.broker.queues:
                extra = "" if q.in_flight is None else f", {q.in_flight} in flight"
                extra += "" if q.consumers is None else f", {q.consumers} consumer(s)"
                line = (
                    f"  queue {q.name}: {q.ready} ready, {q.delayed} delayed, {q.dead} dead{extra}"
                )
                out.append(self.style.WARNING(line) if q.dead else line)
        out.append("Events: " + ", ".join(f"{n} {state}" for state, n in s.events.items()))
        if s.oldest_pending_age is not None:
            out.append(f"  oldest undelivered: {s.oldest_pending_age:.1f}s old")
        for e in s.in_progress:
            out.append(
                f"  delivering #{e['id']} {e['verb']}: {e['written']} written, "
                f"last progress {e['last_progress_s']}s ago, attempt {e['attempts']}"
            )
        for channel, states in s.channel_sends.items():
            line = f"Channel {channel}: " + ", ".join(f"{n} {st}" for st, n in states.items())
            out.append(self.style.WARNING(line) if states.get("failed") else line)
        out.append(f"Delivered in the last 5 min: {s.delivered_recently} ({s.rate_per_second}/s)")
        out.append(f"Scheduler: {s.scheduler}")
        for job in s.jobs:
            error = f", last error: {job['last_error']}" if job["last_error"] else ""
            out.append(
                f"  job {job['name']}: last run {job['age_s']}s ago "
                f"({job['last_duration_ms']} ms), {job['runs']} run(s){error}"
            )
        if not s.jobs:
            out.append("  no periodic job has run yet (is manage.py notify_scheduler running?)")
        return "\n".join(out)


def _json(status: Status) -> str:
    return json.dumps(status.as_dict(), indent=2, sort_keys=True)
