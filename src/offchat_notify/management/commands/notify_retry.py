"""Deliver Events again (failed ones, typically), without duplicating rows already written."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from offchat_notify.models import Event
from offchat_notify.relay import retry


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_ids", nargs="*", type=int, metavar="EVENT_ID")
        parser.add_argument(
            "--failed", action="store_true", help="Retry every Event in state failed."
        )

    def handle(self, *args: Any, event_ids: list[int], failed: bool, **options: Any) -> None:
        if failed:
            event_ids = [
                *event_ids,
                *Event.objects.filter(state=Event.State.FAILED).values_list("pk", flat=True),
            ]
        if not event_ids:
            raise CommandError("Name the Events to retry (EVENT_ID ...), or pass --failed.")
        sent = retry(event_ids)
        skipped = sorted(set(event_ids) - set(sent))
        self.stdout.write(self.style.SUCCESS(f"Sent {len(sent)} event(s) for delivery again."))
        if skipped:
            self.stdout.write(f"Skipped (delivered already, or no such event): {skipped}")
