#!/usr/bin/env python3
"""Django's command-line utility for the offchat-notify example project."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Install the project first (from the repository "
            "root: python3 dev.py, or pip install -e '.[redis]')."
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
