"""Send overdue Events again: pending or queued past RELAY_AFTER, delivering past STUCK_AFTER.

One pass; the scheduler runs it periodically. Safe to run from several
machines at once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from offchat_notify.relay import relay


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="At most this many Events (default: RELAY_BATCH).",
        )

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        ids = relay(limit=limit)
        if ids:
            self.stdout.write(self.style.WARNING(f"Sent {len(ids)} overdue event(s) again."))
        else:
            self.stdout.write("No overdue events.")
