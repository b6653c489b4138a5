#!/usr/bin/env python3
"""Developer entry point: the two commands a fresh clone needs.

    python3 dev.py test [PYTEST ARGS]   build the wheel, install it in .venv, run the test suite
    python3 dev.py example [ARGS]       install into .venv and run the example chat project

The virtualenv is created on first use with the interpreter that runs this
script (Python 3.10 or newer). Tests import the installed wheel, never src/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*args: object, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)  # type: ignore[arg-type]


def ensure_venv() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py runs on whatever python3 is
        sys.exit(f"offchat-notify needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating {VENV} with Python {sys.version.split()[0]} ...", flush=True)
        venv.create(VENV, with_pip=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    # The package as a wheel (not editable), with every extra and the test tools.
    run(PYTHON, "-m", "pip", "install", "--quiet", "--group", "test", ".[redis,rabbitmq,scheduler]")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", ".")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "example"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    if command == "test":
        args = [str(PYTHON), "-m", "pytest", *rest]
    else:
        args = [str(PYTHON), str(ROOT / "example_project" / "run.py"), *rest]
    child = subprocess.Popen(args, cwd=ROOT)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the child too; let it stop its own processes cleanly.
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
