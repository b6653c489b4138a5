#!/usr/bin/env python
"""Email fan-out with a no-op email backend: offchat-notify's batches against the usual patterns.

    python benchmarks/email_fanout.py [--recipients 100000] [--sample 5000]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

In one run, on a scratch PostgreSQL database and Django's dummy email backend
(nothing leaves the process; what is measured is the work around sending):

- ``offchat``: the ``deliver_channel`` job over an Event already delivered to
  the inbox: the ChannelSend rows written by one ``INSERT ... SELECT`` (muted
  users left out), then batches of ``EMAIL_BATCH_SIZE`` rendered from the
  default templates, sent on one connection each and marked ``sent``, for
  ``--recipients`` users;
- ``per_task``: what most peers do, one task per recipient (the broker left
  out, which flatters it): read the user, render the same templates, open a
  connection, send, close, record the send; timed over ``--sample`` recipients;
- ``send_mail``: an inline ``send_mail`` loop over the recipients' addresses,
  one connection per call, with the same templates; timed over ``--sample``.
- ``request``: what the web request waits for. The inline loop runs in the
  request, so it holds it for all ``--recipients`` emails (its rate above,
  times the recipients); ``notify(..., channels=["email"])`` with the
  ``dramatiq`` backend (Redis, default options) holds it for one Event row
  and the hand-off, median of 50 calls.

Prints emails per second for each and the ratios, the request's time both
ways, and the peak RSS of the process (which ran the offchat job first, so
the peak is the job's).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness, services  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scratch-db", default="offchat_bench_email")
    args = parser.parse_args()
    pg = harness.Postgres.from_url(args.database_url)
    redis_url, namespace = "redis://127.0.0.1:6379/0", "offchat-bench-email"
    with (
        harness.scratch_database(pg, args.scratch_db) as name,
        harness.redis_namespace(redis_url, namespace),  # the request's messages, deleted
    ):
        harness.configure_django(
            database=pg.django_database(name),
            redis_url=redis_url,
            namespace=namespace,
            apps=[],
            notify={"BACKEND": "sync"},
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            TEMPLATES=[
                {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
            ],
        )
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run(args.recipients, args.sample)


def run(recipients: int, sample: int) -> None:
    from django.contrib.auth.models import User
    from django.core.mail import get_connection, send_mail
    from django.db.models import F, Value
    from django.db.models.functions import Concat
    from django.template.loader import render_to_string

    from offchat_notify import Audience, notify
    from offchat_notify.channels import deliver as channel_jobs
    from offchat_notify.channels import sends
    from offchat_notify.models import ChannelSend, Event

    services.populate({"admin": recipients})
    User.objects.update(email=Concat(F("username"), Value("@example.com")))
    event = notify(Audience.role("admin"), "bench.email", title="A message was flagged")
    event.refresh_from_db()
    assert event.state == Event.State.DELIVERED, event.last_error
    Event.objects.filter(pk=event.pk).update(channels=["email"])
    event.channels = ["email"]

    started = time.perf_counter()
    sends.record(event, ["email"])
    sent = channel_jobs.deliver_channel(event.pk, "email")
    offchat = time.perf_counter() - started
    assert sent == recipients, sent
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    context = {"event": event, "title": event.title, "body": "", "verb": event.verb}
    ids = list(User.objects.order_by("pk").values_list("pk", flat=True)[:sample])

    started = time.perf_counter()
    for pk in ids:  # one task per recipient
        user = User.objects.get(pk=pk)
        ctx = {**context, "user": user}
        subject = render_to_string("offchat_notify/email/default/subject.txt", ctx).strip()
        body = render_to_string("offchat_notify/email/default/body.txt", ctx)
        html = render_to_string("offchat_notify/email/default/body.html", ctx)
        connection = get_connection()
        connection.open()
        send_mail(subject, body, None, [user.email], html_message=html, connection=connection)
        connection.close()
        ChannelSend.objects.filter(event_id=event.pk, recipient_id=pk).update(state="sent")
    per_task = time.perf_counter() - started

    addresses = list(User.objects.order_by("pk").values_list("email", flat=True)[:sample])
    started = time.perf_counter()
    for address in addresses:  # inline send_mail loop
        ctx = {**context, "user": None}
        subject = render_to_string("offchat_notify/email/default/subject.txt", ctx).strip()
        body = render_to_string("offchat_notify/email/default/body.txt", ctx)
        send_mail(subject, body, None, [address])
    inline = time.perf_counter() - started

    from django.test import override_settings

    from offchat_notify.backends.dramatiq import sender

    calls = []
    with override_settings(OFFCHAT_NOTIFY={"BACKEND": "dramatiq"}):
        for _ in range(50):
            started = time.perf_counter()
            notify(Audience.role("admin"), "bench.email", title="Flagged", channels=["email"])
            calls.append(time.perf_counter() - started)
        sender.flush()
    request = statistics.median(calls)
    inline_request = recipients * inline / sample

    rate = {
        "offchat": recipients / offchat,
        "per_task": sample / per_task,
        "send_mail": sample / inline,
    }
    print(f"Email fan-out, dummy backend, {recipients:,} recipients (others: {sample:,})")
    print("| method | emails/s | offchat-notify is |")
    print("|---|---:|---:|")
    for name, value in rate.items():
        print(f"| {name} | {value:,.0f} | {rate['offchat'] / value:.1f}x |")
    print(f"offchat job: {offchat:.1f} s; peak RSS {peak:.0f} MB")
    print(
        f"The request, {recipients:,} recipients: the inline send_mail loop holds it "
        f"{inline_request:.2f} s, notify() with the dramatiq backend {request * 1000:.2f} ms "
        f"(median of {len(calls)}): {inline_request / request:,.0f}x"
    )


if __name__ == "__main__":
    main()
