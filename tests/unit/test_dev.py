"""dev.py reinstalls only what changed, and the suite says why a test was skipped (issue #12)."""

from __future__ import annotations

import pytest

import dev


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout with a venv, and dev.py's pip commands recorded instead of run."""
    (tmp_path / "src" / "offchat_notify").mkdir(parents=True)
    (tmp_path / "src" / "offchat_notify" / "api.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'offchat-notify'\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    calls: list[tuple[list[str], bool]] = []

    def run(*args):
        calls.append(([str(a) for a in args], (tmp_path / "build").exists()))

    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(dev, "PYTHON", python)
    monkeypatch.setattr(dev, "STAMP", tmp_path / ".venv" / ".offchat-src-hash")
    monkeypatch.setattr(dev, "run", run)
    return tmp_path, calls


def installs(calls) -> int:
    """How many times the package itself was (re)installed."""
    return sum("--force-reinstall" in args for args, _ in calls)


def test_the_first_run_installs_and_later_runs_skip_the_reinstall(checkout):
    root, calls = checkout
    dev.ensure_venv()
    assert installs(calls) == 1
    assert (root / ".venv" / ".offchat-src-hash").read_text().strip() == dev.source_hash()
    dev.ensure_venv()
    dev.ensure_venv()
    assert installs(calls) == 1


@pytest.mark.parametrize(
    ("path", "reinstalls"),
    [
        ("src/offchat_notify/api.py", True),  # a source changed
        ("src/offchat_notify/new.py", True),  # a source added
        ("pyproject.toml", True),
        ("src/offchat_notify/__pycache__/api.cpython-311.pyc", False),  # Python's cache
        ("src/offchat_notify.egg-info/SOURCES.txt", False),  # written by the build
        ("tests/test_x.py", False),  # not in the wheel
    ],
)
def test_a_change_under_src_or_to_pyproject_reinstalls(checkout, path, reinstalls):
    root, calls = checkout
    dev.ensure_venv()
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text("changed\n")
    dev.ensure_venv()
    assert installs(calls) == (2 if reinstalls else 1)


def test_a_deleted_module_is_not_shipped_from_a_stale_build_dir(checkout):
    root, calls = checkout
    stale = root / "build" / "lib" / "offchat_notify" / "gone.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("# deleted from src/, still in build/lib\n")
    dev.ensure_venv()
    assert calls, "nothing was installed"
    assert not any(build_dir_existed for _, build_dir_existed in calls[1:])


def test_an_interrupted_install_is_redone(checkout, monkeypatch):
    root, calls = checkout
    dev.ensure_venv()
    (root / "src" / "offchat_notify" / "api.py").write_text("x = 2\n")

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(dev, "run", fail)
    with pytest.raises(KeyboardInterrupt):
        dev.ensure_venv()
    assert not (root / ".venv" / ".offchat-src-hash").exists()


def test_pytest_reports_why_tests_were_skipped_and_still_lists_failures(pytestconfig):
    addopts = pytestconfig.getini("addopts")  # pyproject.toml's [tool.pytest.ini_options]
    (report,) = [opt[2:] for opt in addopts if opt.startswith("-r")]
    assert {"s", "f", "E"} <= set(report)
