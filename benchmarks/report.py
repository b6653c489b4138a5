"""The Markdown report of request_path.py, printed from a finished :class:`Bench`."""

from __future__ import annotations

import statistics

from benchmarks import harness
from benchmarks.variants import INLINE_BARE_PER_ROUND, Bench, Variant

#: DESIGN.md section 8: a save that notifies costs at most 10% more than the
#: floor, the save plus one raw INSERT of the Event row.
BUDGET = 1.10


def ms(samples: list[float]) -> float:
    """The median of ``samples`` (seconds), in ms."""
    return statistics.median(samples) * 1000


def print_report(bench: Bench) -> None:
    print_header(bench)
    print_times(bench)
    print_work(bench)
    if bench.probes:
        print_breakdown(bench)


def print_header(bench: Bench) -> None:
    from django.conf import settings

    args = bench.args
    print("# offchat-notify: request path of a chat message save\n")
    for name, value in harness.versions(bench.redis):
        print(f"- {name}: {value}")
    print(
        f"- backend: dramatiq, RedisBroker namespace `{args.namespace}`, middleware "
        f"{len(settings.DRAMATIQ_BROKER['MIDDLEWARE'])} (as tests/settings.py); no worker "
        "running"
    )
    print(
        f"- {args.iterations} timed calls per variant after {args.warmup} warm-up calls, "
        f"interleaved round-robin in a shuffled order each round (seed {args.seed}); "
        "times are `time.perf_counter` wall time per call, ms"
    )
    if bench.inline:
        print(
            f"- inline rows (the pattern offchat-notify replaces, in `atomic()`): "
            f"{args.inline_iterations} timed calls each after {args.inline_warmup} warm-up "
            f"calls, in a phase of their own after the main rounds, each round interleaved "
            f"with {INLINE_BARE_PER_ROUND} bare saves, their baseline; one "
            "`chat.InlineNotification` row per admin (a benchmark-only model)"
        )
    print()


def print_times(bench: Bench) -> None:
    print(
        "| transaction | variant | median ms | p90 ms | p99 ms | ratio to bare "
        "(median) | ratio to floor (95% CI) | budget <= 1.10x floor |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|")
    for variant in bench.all_variants:
        bare = bench.bare_for(variant)
        s = [x * 1000 for x in variant.samples]
        median = statistics.median(s)
        ratio = median / ms(bare.samples)
        to_floor, verdict = "", ""
        if variant.kind == "notify":
            floor = bench.floor_for(variant)
            low, high = harness.ratio_interval(variant.samples, floor.samples, bench.rng)
            of_floor = median / ms(floor.samples)
            to_floor = f"{of_floor:.2f}x ({low:.2f}-{high:.2f})"
            verdict = "PASS" if of_floor <= BUDGET else "MISS"
        elif variant.kind in ("loop", "bulk"):
            verdict = "n/a (replaced pattern)"
        print(
            f"| {variant.mode} | {variant.label} | {median:.3f} | "
            f"{harness.quantile(s, 0.9):.3f} | {harness.quantile(s, 0.99):.3f} | "
            f"{ratio:.2f}x | {to_floor} | {verdict} |"
        )


def print_work(bench: Bench) -> None:
    print("\n## Work per call (one extra untimed call of each variant)\n")
    print("| transaction | variant | SQL statements | Redis commands |")
    print("|---|---|---:|---|")
    for variant in bench.all_variants:
        queries, commands = bench.work[variant]
        print(
            f"| {variant.mode} | {variant.label} | {len(queries)} | "
            f"{len(commands)} {' '.join(commands)} |"
        )
    last = bench.variants[-1]
    print(f"\nSQL of `{last.mode}`, `{last.label}`:\n")
    for sql in bench.work[last][0]:
        print(f"    {sql[:150]}{' ...' if len(sql) > 150 else ''}")


def print_breakdown(bench: Bench) -> None:
    print("\n## Where the added time goes (components, interleaved like the variants)\n")
    print("| component | median ms | p90 ms |")
    print("|---|---:|---:|")
    for probe in bench.probes:
        s = [x * 1000 for x in probe.samples]
        print(f"| {probe.label} | {statistics.median(s):.3f} | {harness.quantile(s, 0.9):.3f} |")
    print()
    for variant in bench.variants:
        if variant.kind != "notify":
            continue
        floor = ms(bench.floor_for(variant).samples)
        print(
            f"- {variant.mode}, {variant.size:,} admins, {variant.dispatch} dispatch: "
            f"{ms(variant.samples) - floor:.3f} ms over the floor's median (budget allows "
            f"{(BUDGET - 1) * floor:.3f} ms)"
        )


def summary(bench: Bench) -> str:
    """One line: the inline patterns against notify_admins, in atomic(); '' without them."""
    if not bench.inline:
        return ""
    loop = next(v for v in bench.inline if v.kind == "loop")
    bulk = next(v for v in bench.inline if v.kind == "bulk")
    notify = _closest_notify(bench, loop.size or 0)
    at = "" if notify.size == loop.size else f", {notify.size:,} admins"
    return (
        f"{loop.size:,} admins: inline loop {ms(loop.samples):.1f} ms, inline bulk_create "
        f"{ms(bulk.samples):.1f} ms, offchat-notify {ms(notify.samples):.2f} ms "
        f"(atomic{at}), {ms(loop.samples) / ms(notify.samples):,.0f}x faster than the loop"
    )


def _closest_notify(bench: Bench, size: int) -> Variant:
    """The atomic() notify variant of ``size`` admins, or of the nearest size measured."""
    notify = [
        v for v in bench.variants if v.kind == "notify" and v.atomic and v.dispatch == "inline"
    ]
    return min(notify, key=lambda v: (abs((v.size or 0) - size), v.size))
