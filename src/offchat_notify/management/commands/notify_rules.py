"""List the notification rules the registry knows: model, event, rule and module."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from offchat_notify.registry import default as registry


class Command(BaseCommand):
    help = __doc__
    # It must run, and show its "unknown model" marker, when E009 fails.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        rules = sorted(registry.get_rules(), key=lambda r: (r.model or "", r.event, r.name))
        if not rules:
            self.stdout.write(
                "No notification rules. Add <app>/notifications.py with @registry.on_create(...)."
            )
            return
        rows = [("MODEL / SIGNAL", "EVENT", "RULE", "MODULE")]
        for rule in rules:
            on = rule.model or _signal_name(rule)
            if rule.model is not None and registry.model_for(rule) is None:
                on += " (unknown model!)"
            rows.append((on, rule.event, rule.func.__qualname__, rule.func.__module__))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for n, row in enumerate(rows):
            line = (
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                + "  "
                + row[3]
            )
            self.stdout.write(self.style.MIGRATE_HEADING(line) if n == 0 else line)


def _signal_name(rule: Any) -> str:
    signal = _name_of(rule.signal)
    sender = rule.sender
    if sender is None:
        return f"{signal} (any sender)"
    meta = getattr(sender, "_meta", None)
    return f"{signal} from {meta.label if meta else _name_of(sender)}"


def _name_of(obj: Any) -> str:
    """Where ``obj`` is defined: a class's dotted name, or the module attribute
    that holds a signal (signals have no name of their own)."""
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    for module in list(sys.modules.values()):
        for attr, value in list(getattr(module, "__dict__", {}).items()):
            if value is obj and not attr.startswith("_"):
                return f"{module.__name__}.{attr}"
    return repr(obj)
