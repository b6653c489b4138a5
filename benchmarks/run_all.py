#!/usr/bin/env python
"""offchat-notify's performance, side by side, on PostgreSQL and on SQLite, in one command.

    python benchmarks/run_all.py [--quick] [--docs]

For each database, in a process of its own (suite.py), in this order:

1. the request path of a chat message save that notifies 10 to 10,000
   admins, every way: bare save, inline loop and bulk_create, Celery
   ``delay_on_commit``, django-notifications-hq, and offchat-notify's sync,
   eager and dramatiq (Redis, RabbitMQ) backends (compare.py);
2. end to end with real ``rundramatiq`` workers: commit to all rows present,
   1,000 and 100,000 recipients (end_to_end.py);
3. worker fan-out of 10,000 to 1,000,000 recipients: rows/s and peak RSS of
   one delivery job, against the inline bulk_create and the raw SQL ceiling
   (fanout.py), once the users have grown to 1,000,000.

Writes benchmarks/results/: performance.md (the report), CSV tables, PNG
figures and the raw JSON; prints the report. ``--docs`` copies the report,
tables and figures into docs/performance/. A full run takes 11 to 13 minutes
on the 2-core dev machine, ``--quick`` about 2. The library measured is a copy
of src/ taken at the start. See benchmarks/README.md.

Exit status: 0 when every run completed and every correctness check passed
(a missed target is reported, not fatal); 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "performance"
PARTS = ("request", "fanout", "e2e")
FIGURES = ("request_path", "fanout", "end_to_end")  # plots.draw_all's PNG files


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a ~2 minute run, fewer samples")
    mode.add_argument("--smoke", action="store_true", help="a check that all runs; no figures")
    parser.add_argument("--docs", action="store_true", help="copy the results to docs/performance")
    parser.add_argument("--databases", default="postgresql,sqlite", help="default: both")
    parser.add_argument("--parts", default=",".join(PARTS), help="default: " + ",".join(PARTS))
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", harness.DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--scratch-db", default="offchat_bench_all")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", harness.DEFAULT_REDIS_URL)
    )
    parser.add_argument(
        "--rabbitmq-url", default=os.environ.get("RABBITMQ_URL", services.DEFAULT_RABBITMQ_URL)
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.databases = [d for d in args.databases.split(",") if d]
    args.parts = [p for p in args.parts.split(",") if p]
    if args.docs and (
        args.smoke
        or set(args.databases) != {"postgresql", "sqlite"}
        or set(args.parts) != set(PARTS)
    ):
        parser.error("--docs needs a full or --quick run of every part on both databases")
    return args


def run_suite(args: argparse.Namespace, vendor: str, plan: str) -> Path | None:
    out = args.out / f"raw-{vendor}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "benchmarks.suite",
        "--vendor",
        vendor,
        "--plan",
        plan,
        "--out",
        str(out),
        "--parts",
        ",".join(args.parts),
        "--database-url",
        args.database_url,
        "--scratch-db",
        args.scratch_db,
        "--redis-url",
        args.redis_url,
        "--rabbitmq-url",
        args.rabbitmq_url,
        "--seed",
        str(args.seed),
    ]
    proc = subprocess.Popen(command, cwd=HERE.parent, env=services.child_env(None))
    try:
        code = proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGTERM)  # the suite drops its database and keys on SIGTERM
        proc.wait(timeout=120)
        raise
    if code not in (0, 1) or not out.exists():
        print(f"run_all: the {vendor} suite failed (exit status {code})", file=sys.stderr)
        return None
    return out


@contextmanager
def library_snapshot() -> Iterator[list[tuple[str, str]]]:
    """Measure a copy of src/offchat_notify taken now, and say which.

    A full run lasts about 15 minutes and starts many processes; in a working
    tree others edit, they would otherwise import different versions of the
    library (or a model without its migration). The copy goes first on the
    PYTHONPATH that every process of the run inherits.
    """
    source = HERE.parent / "src" / "offchat_notify"
    git = ["git", "-C", str(HERE.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    )
    what = f"git {head.stdout.strip() or '?'}" + (
        " with uncommitted changes in src/" if dirty.stdout.strip() else ""
    )
    copy = Path(tempfile.mkdtemp(prefix="offchat-bench-src-"))
    try:
        shutil.copytree(source, copy / "offchat_notify", ignore=shutil.ignore_patterns("*.pyc"))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(copy), os.environ.get("PYTHONPATH")])
        )
        yield [("offchat-notify source", f"{what}, copied at the start of the run")]
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def report(raws: list[dict], meta: list[tuple[str, str]]) -> str:
    from benchmarks import results
    from benchmarks.results import markdown

    versions: dict[str, str] = {}
    for raw in raws:
        versions.update(dict(raw["versions"]))
    machine = (["what", "value"], [[k, v] for k, v in meta + list(versions.items())])
    parts = [
        "# offchat-notify performance\n",
        "Every ratio compares medians measured in the same run on the same database; the "
        "machine is shared and noisy, so absolute times are only indicative.\n",
        "## Machine, versions and run\n",
        markdown(machine),
        "\n## Targets\n",
        markdown(results.targets(raws)),
    ]
    tables = {"machine": machine, "targets": results.targets(raws)}
    for raw in raws:
        if "request_path" in raw:
            name = results.VENDORS[raw["vendor"]]
            table = results.request_table(raw)
            tables[f"request_path_{raw['vendor']}"] = table
            parts += [
                f"\n## Request path, {name}\n",
                "A chat message save that notifies N admins, in `transaction.atomic()` (commit "
                "and on-commit callbacks timed). Celery's bulk task is only sent: no Celery "
                "worker runs, its rows are not written in the request. With fewer than 100 timed "
                "calls, p99 is close to the maximum.\n",
                markdown(table),
            ]
    if any(r.get("fanout") for r in raws):
        tables["fanout"] = results.fanout_table(raws)
        parts += ["\n## Worker fan-out, one process\n", markdown(tables["fanout"])]
    if any(r.get("end_to_end") for r in raws):
        tables["end_to_end"] = results.e2e_table(raws)
        parts += ["\n## End to end, dramatiq on Redis\n", markdown(tables["end_to_end"])]
    parts += ["\n## Figures\n"] + [f"![{name}]({name}.png)" for name in FIGURES]
    checks = [c for raw in raws for c in raw["checks"]]
    parts += ["\n## Correctness checks\n"]
    parts += [f"- {'ok' if ok else 'FAILED'}: {text}" for ok, text in checks]
    return "\n".join(parts) + "\n", tables


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = "smoke" if args.smoke else "quick" if args.quick else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with library_snapshot() as source:
        paths = [run_suite(args, vendor, plan) for vendor in args.databases]
    raws = [json.loads(p.read_text()) for p in paths if p is not None]
    if not raws:
        return 1
    command = "python benchmarks/run_all.py" + "".join(
        f" --{flag}" for flag in ("quick", "smoke", "docs") if getattr(args, flag)
    )
    meta = [
        ("command", command),
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("run time", f"{(time.perf_counter() - started) / 60:.1f} min"),
        *source,
    ]
    text, tables = report(raws, meta)
    from benchmarks import plots, results

    written = [args.out / "performance.md"]
    written[0].write_text(text)
    for name, table in tables.items():
        results.write_csv(args.out / f"{name}.csv", table)
        written.append(args.out / f"{name}.csv")
    written += plots.draw_all(raws, args.out)
    print("\n" + text)
    print(f"Wrote {', '.join(os.path.relpath(p) for p in written)}")
    if args.docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        for path in written:
            shutil.copy2(path, DOCS / path.name)
        print(f"Copied them to {os.path.relpath(DOCS)}/")
    ok = len(raws) == len(args.databases) and all(c[0] for raw in raws for c in raw["checks"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
