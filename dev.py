#!/usr/bin/env python3
"""Developer entry point: the two commands a fresh clone needs.

    python3 dev.py test [PYTEST ARGS]   build the wheel, install it in .venv, run the test suite
    python3 dev.py example [ARGS]       install into .venv and run the example chat project

The virtualenv is created on first use with the interpreter that runs this
script (Python 3.10 or newer). Tests import the installed wheel, never src/.
The wheel is rebuilt and reinstalled only when src/ or pyproject.toml changed
since the last install (their hash is kept in .venv/.offchat-src-hash; delete
it to force a reinstall).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
#: The hash of what the installed wheel was built from.
STAMP = VENV / ".offchat-src-hash"
#: What is installed: the package with every extra, and the test tools.
INSTALL = ("--group", "test", ".[redis,rabbitmq,scheduler]")


def run(*args: object, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)  # type: ignore[arg-type]


def ensure_venv() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py runs on whatever python3 is
        sys.exit(f"offchat-notify needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating {VENV} with Python {sys.version.split()[0]} ...", flush=True)
        venv.create(VENV, with_pip=True)
    digest = source_hash()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return  # the installed wheel was built from exactly this source
    print("Installing offchat-notify into .venv (src/ or pyproject.toml changed) ...", flush=True)
    STAMP.unlink(missing_ok=True)  # an interrupted install is redone next time
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    # setuptools' build/lib keeps modules deleted from src/ and would ship them again.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    # The package as a wheel (not editable), with every extra and the test tools.
    run(PYTHON, "-m", "pip", "install", "--quiet", *INSTALL)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", ".")
    STAMP.write_text(digest + "\n")


def source_hash() -> str:
    """A hash of everything the wheel is built from: pyproject.toml and src/ (and INSTALL)."""
    digest = hashlib.sha256(repr(INSTALL).encode())
    files = [ROOT / "pyproject.toml", *(ROOT / "src").rglob("*")]
    for path in sorted(p for p in files if p.is_file()):
        relative = path.relative_to(ROOT)
        if "__pycache__" in relative.parts or any(
            part.endswith(".egg-info") for part in relative.parts
        ):
            continue  # written by Python and by the build, not sources
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


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
