"""The deployment files of docs/deploy/ parse, and start what docs/deployment.rst says.

The systemd units and the supervisor configuration are INI dialects, read here
with configparser. compose.yaml is checked for its structure by a small
line-based reader that needs nothing; the full YAML check runs only where
PyYAML is installed (pytest.importorskip), since it is not a test dependency.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
DEPLOYMENT_RST = DEPLOY.parent / "deployment.rst"

PYTHON = "/srv/chat/.venv/bin/python"
ENV_FILE = "/etc/chat/chat.env"
#: The worker command every file runs, after the interpreter.
WORKER_ARGS = [
    "manage.py",
    "rundramatiq",
    "--processes",
    "2",
    "--threads",
    "4",
    "--worker-shutdown-timeout",
    "60000",
]
SCHEDULER_ARGS = ["manage.py", "notify_scheduler"]
SHUTDOWN_TIMEOUT_S = 60


def read_ini(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, comment_prefixes=("#", ";"), empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(), source=name)
    return parser


def env_assignments(values: list[str]) -> dict[str, str]:
    """``Environment=`` lines of a unit (each holds one or more KEY=VALUE words)."""
    env = {}
    for value in values:
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            env[key] = val
    return env


def unit_lines(name: str, key: str, *, uncomment: bool = False) -> list[str]:
    """Every value of ``key`` in a unit (configparser keeps only the last one)."""
    values = []
    for line in (DEPLOY / name).read_text().splitlines():
        if uncomment and line.startswith("#" + key + "="):
            line = line[1:]
        if line.startswith(key + "="):
            values.append(line.split("=", 1)[1])
    return values


def test_every_deploy_file_is_shown_in_the_deployment_guide() -> None:
    text = DEPLOYMENT_RST.read_text()
    included = set(re.findall(r"^\.\. literalinclude:: deploy/(\S+)$", text, re.M))
    assert included == {p.name for p in DEPLOY.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("name", "args"),
    [("offchat-worker.service", WORKER_ARGS), ("offchat-scheduler.service", SCHEDULER_ARGS)],
)
def test_systemd_unit(name: str, args: list[str]) -> None:
    unit = read_ini(name)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    assert shlex.split(service["ExecStart"]) == [PYTHON, *args]
    assert service["Type"] == "simple"
    assert service["WorkingDirectory"] == "/srv/chat"
    assert service["User"] == "chat"
    assert service["EnvironmentFile"] == ENV_FILE
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"
    assert "network-online.target" in unit["Unit"]["After"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_worker_unit_stops_gracefully() -> None:
    service = read_ini("offchat-worker.service")["Service"]
    # SIGTERM to dramatiq's main process only: a second SIGTERM kills a worker process.
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > SHUTDOWN_TIMEOUT_S
    env = env_assignments(unit_lines("offchat-worker.service", "Environment"))
    # The library's Redis broker wakes idle workers: no worker timeout to tune.
    assert "dramatiq_worker_timeout" not in env


def test_worker_unit_prometheus_lines_agree_once_uncommented() -> None:
    runtime = unit_lines("offchat-worker.service", "RuntimeDirectory", uncomment=True)
    env = env_assignments(unit_lines("offchat-worker.service", "Environment", uncomment=True))
    assert runtime == ["offchat-worker"]
    # dramatiq writes where dramatiq_prom_db says; prometheus-client reads the other.
    assert env["dramatiq_prom_db"] == env["PROMETHEUS_MULTIPROC_DIR"] == "/run/offchat-worker"
    assert env["dramatiq_prom_port"] == "9191"


def test_scheduler_unit_has_no_prometheus_or_kill_mode_of_the_worker() -> None:
    service = read_ini("offchat-scheduler.service")["Service"]
    assert "KillMode" not in service
    assert int(service["TimeoutStopSec"]) >= 10


def test_environment_file() -> None:
    env = {}
    for line in (DEPLOY / "chat.env").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
        env[key] = shlex.split(value)[0] if value else ""
    assert set(env) == {
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_SECRET_KEY",
        "DB_HOST",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "REDIS_URL",
    }
    url = urlsplit(env["REDIS_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("redis", "10.0.0.5", 6379, "/0")
    assert url.password and not url.username
    assert set(parse_qs(url.query)) == {"socket_connect_timeout", "socket_timeout"}


def test_supervisor_config() -> None:
    conf = read_ini("supervisor.conf")
    assert conf.sections() == [
        "group:offchat",
        "program:offchat-worker",
        "program:offchat-scheduler",
    ]
    assert conf["group:offchat"]["programs"].split(",") == ["offchat-worker", "offchat-scheduler"]
    for program, args in (("offchat-worker", WORKER_ARGS), ("offchat-scheduler", SCHEDULER_ARGS)):
        section = conf[f"program:{program}"]
        shell, flag, script = shlex.split(section["command"])
        assert (shell, flag) == ("/bin/sh", "-c")
        sourced = ["set", "-a", "&&", ".", ENV_FILE, "&&"]
        assert shlex.split(script) == [*sourced, "exec", PYTHON, *args]
        assert section["directory"] == "/srv/chat"
        assert section["user"] == "chat"
        assert section["autorestart"] == "true"
        assert section["stopsignal"] == "TERM"
    worker = conf["program:offchat-worker"]
    assert worker["stopasgroup"] == "false"
    assert worker["killasgroup"] == "true"
    assert int(worker["stopwaitsecs"]) > SHUTDOWN_TIMEOUT_S
    assert "dramatiq_worker_timeout" not in worker.get("environment", "")


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word, rest))
            pending = ""
    assert not pending, "the last instruction ends with a line continuation"
    return instructions


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    words = [word for word, _ in instructions]
    assert words[0] == "FROM"
    assert set(words) <= {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "EXPOSE", "CMD"}
    env_words = [word for verb, rest in instructions if verb == "ENV" for word in rest.split()]
    env = dict(word.split("=", 1) for word in env_words)
    assert "dramatiq_worker_timeout" not in env
    assert env["DJANGO_SETTINGS_MODULE"] == "chat.settings"
    assert dict(instructions)["USER"] == "chat"
    # Exec form: the process is PID 1 and gets docker stop's SIGTERM itself.
    assert json.loads(dict(instructions)["CMD"])[0] == "gunicorn"


def compose_outline() -> dict[str, dict[str, str]]:
    """Top-level keys, and each service's keys, by indentation: no YAML library needed."""
    outline: dict[str, dict[str, str]] = {}
    top = service = None
    for line in (DEPLOY / "compose.yaml").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, _, value = line.strip().partition(":")
        if indent == 0:
            top = key
            outline.setdefault(top, {})
        elif indent == 2 and top == "services":
            service = key
            outline.setdefault(f"services.{service}", {})
        elif indent == 4 and top == "services" and service:
            outline[f"services.{service}"][key] = value.strip()
    return outline


SERVICES = {"postgres", "redis", "migrate", "web", "worker", "scheduler"}


def test_compose_outline() -> None:
    outline = compose_outline()
    assert set(outline) == {"x-app", "services", "volumes"} | {f"services.{s}" for s in SERVICES}
    for name in ("migrate", "web", "worker", "scheduler"):
        assert outline[f"services.{name}"]["<<"] == "*app"
    assert outline["services.worker"]["stop_grace_period"] == "90s"
    assert outline["services.migrate"]["restart"] == '"no"'


def test_compose_yaml() -> None:
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is not installed: compose.yaml's outline only is checked"
    )
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == SERVICES
    assert services["worker"]["command"] == ["python", *WORKER_ARGS]
    assert services["scheduler"]["command"] == ["python", *SCHEDULER_ARGS]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("web", "worker", "scheduler"):
        app = services[name]
        assert app["image"] == "chat:latest"
        assert app["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert app["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")
    assert int(services["worker"]["stop_grace_period"].removesuffix("s")) > SHUTDOWN_TIMEOUT_S
    assert "noeviction" in services["redis"]["command"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}
