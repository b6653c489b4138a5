"""The correctness checks of request_path.py, run on a finished :class:`Bench`.

offchat-notify's request path does no audience work: one Event per call,
no Notification rows, one broker message per dispatch, the same work at
every audience size. The inline variants wrote exactly one benchmark row
per admin per call, and no Event.
"""

from __future__ import annotations

from typing import Any

from benchmarks.variants import Bench, Variant


def check(bench: Bench) -> bool:
    """Print the checks; True when all of them pass."""
    from django.contrib.contenttypes.models import ContentType

    from benchmarks.chat.models import Message

    message_type = ContentType.objects.get_for_model(Message)
    results: list[tuple[bool, str]] = []
    for variant in bench.all_variants:
        results.extend(check_events(variant, message_type))
    results.extend(check_inline_rows(bench, message_type))
    results.extend(check_library(bench))
    print("\n## Correctness\n")
    for ok, text in results:
        print(f"- {'ok' if ok else 'FAILED'}: {text}")
    return all(ok for ok, _text in results)


def per_message(queryset: Any) -> dict[str, int]:
    """Rows of ``queryset`` per target_object_id."""
    from django.db.models import Count

    return dict(queryset.values_list("target_object_id").annotate(n=Count("id")).order_by())


def check_events(variant: Variant, message_type: Any) -> list[tuple[bool, str]]:
    """One pending Event with the right audience per notify call; none otherwise."""
    from offchat_notify.models import Event

    ids = [str(pk) for pk in variant.message_ids]
    events = Event.objects.filter(target_content_type=message_type, target_object_id__in=ids)
    counts = per_message(events)
    name = f"{variant.mode}, {variant.label}"
    if variant.kind == "floor":
        one_each = len(counts) == len(ids) and set(counts.values()) == {1}
        return [(one_each, f"{name}: one raw Event per call ({len(ids)} calls)")]
    if variant.kind != "notify":
        return [(not counts, f"{name}: no Event for {len(ids)} calls")]
    one_each = len(counts) == len(ids) and set(counts.values()) == {1}
    right = not events.exclude(audience={"role": variant.role}).exists()
    right = right and not events.exclude(state=Event.State.PENDING).exists()
    return [
        (
            one_each,
            f"{name}: exactly one Event per call ({len(ids)} calls, {sum(counts.values())} Events)",
        ),
        (right, f"{name}: every Event has audience {{'role': {variant.role!r}}} and is pending"),
    ]


def check_inline_rows(bench: Bench, message_type: Any) -> list[tuple[bool, str]]:
    """Each inline call wrote one row per admin, to the admins; nothing else wrote any."""
    from django.contrib.auth.models import User

    from benchmarks.chat.models import InlineNotification

    results: list[tuple[bool, str]] = []
    expected = 0
    for variant in bench.inline:
        if variant.kind == "bare":
            continue
        ids = [str(pk) for pk in variant.message_ids]
        rows = InlineNotification.objects.filter(
            target_content_type=message_type, target_object_id__in=ids
        )
        counts = per_message(rows)
        admins = User.objects.filter(groups__name=variant.role)
        ok = len(counts) == len(ids) and set(counts.values()) == {variant.size}
        ok = ok and not rows.exclude(recipient__in=admins).exists()
        distinct = rows.values("target_object_id", "recipient").distinct().count()
        ok = ok and distinct == sum(counts.values())
        results.append(
            (
                ok,
                f"{variant.mode}, {variant.label}: {variant.size:,} rows per call, one per "
                f"admin ({len(ids)} calls, {sum(counts.values()):,} rows)",
            )
        )
        expected += len(ids) * (variant.size or 0)
    total = InlineNotification.objects.count()
    results.append(
        (total == expected, f"inline rows in all: {total:,}, all written by the inline variants")
    )
    return results


def check_library(bench: Bench) -> list[tuple[bool, str]]:
    """No Notification rows, flat work per call, one broker message per dispatch."""
    from offchat_notify.models import Notification

    notifications = Notification.objects.count()
    results = [
        (
            notifications == 0,
            f"Notification rows written: {notifications} "
            "(no worker ran, so the request path must write none)",
        )
    ]
    for atomic in (False, True):
        for dispatch in ("inline", "background"):
            sized = [
                v
                for v in bench.variants
                if v.atomic == atomic and v.kind == "notify" and v.dispatch == dispatch
            ]
            work = [(v.size, *map(len, bench.work[v])) for v in sized]
            same = len({(q, c) for _size, q, c in work}) == 1
            desc = ", ".join(f"{size:,}: {q} SQL + {c} Redis" for size, q, c in work)
            results.append(
                (
                    same,
                    f"{sized[0].mode}, {dispatch} dispatch: same work per call at every "
                    f"audience size ({desc})",
                )
            )
    from offchat_notify.backends.dramatiq import sender

    sender.flush(timeout=30)  # background sends still on their way
    queue = bench.broker.client.hlen(f"{bench.args.namespace}:offchat_notify.msgs")
    results.append(
        (
            queue == bench.dispatches,
            f"broker holds {queue} messages for "
            f"{bench.dispatches} dispatches (each notify reached Redis)",
        )
    )
    return results
