"""Check the whole offchat-notify setup and say how to fix what is wrong.

Exits with status 1 if anything is an error (or, with --strict, a warning).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from offchat_notify.ops.doctor import ERROR, OK, WARNING, diagnose


class Command(BaseCommand):
    help = __doc__
    # The doctor reports check errors itself, with their fixes.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--strict", action="store_true", help="Warnings fail too.")

    def handle(self, *args: Any, strict: bool, **options: Any) -> None:
        marks = {
            OK: self.style.SUCCESS("ok  "),
            WARNING: self.style.WARNING("warn"),
            ERROR: self.style.ERROR("FAIL"),
        }
        counts = {OK: 0, WARNING: 0, ERROR: 0}
        for finding in diagnose():
            counts[finding.level] += 1
            self.stdout.write(f"[{marks[finding.level]}] {finding.title}")
            if finding.fix:
                self.stdout.write(f"       fix: {finding.fix}")
        self.stdout.write(
            f"{counts[ERROR]} error(s), {counts[WARNING]} warning(s), {counts[OK]} ok."
        )
        if counts[ERROR] or (strict and counts[WARNING]):
            sys.exit(1)
