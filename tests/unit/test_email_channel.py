"""The email channel with Django's locmem backend: who gets what, batches, failures, headers."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import django
import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test import override_settings
from django.utils import timezone

from offchat_notify import Audience, notify
from offchat_notify.backends.jobs import check_args
from offchat_notify.channels import deliver as channel_jobs
from offchat_notify.channels import email
from offchat_notify.exceptions import PoisonMessage, TransientDeliveryError
from offchat_notify.models import ChannelSend
from offchat_notify.preferences import mute
from offchat_notify.relay import relay_channels
from tests.email_backends import CountingBackend

pytestmark = pytest.mark.django_db
COUNTING = "tests.email_backends.CountingBackend"
SETTINGS = {"BACKEND": "sync", "EMAIL_SITE_URL": "https://example.com"}


@pytest.fixture(autouse=True)
def _settings(settings):
    CountingBackend.reset()
    if django.VERSION >= (6, 1):  # EMAIL_BACKEND is deprecated there
        settings.MAILERS = {"default": {"BACKEND": COUNTING}}
    else:
        settings.EMAIL_BACKEND = COUNTING
    settings.DEFAULT_FROM_EMAIL = "noreply@example.com"
    settings.OFFCHAT_NOTIFY = SETTINGS


@pytest.fixture
def users(make_users):
    users = make_users(5)
    model = type(users[0])
    model.objects.filter(pk__in=[u.pk for u in users]).update(
        email=Concat(F("username"), Value("@example.com"))
    )
    for user in users:
        user.refresh_from_db()
    return users


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    def send(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return notify(*args, **kwargs)

    return send


def sends(state: str | None = None) -> list[ChannelSend]:
    qs = ChannelSend.objects.order_by("id")
    return list(qs.filter(state=state) if state else qs)


def test_every_unmuted_recipient_gets_one_email_and_muted_ones_none(users, send):
    mute(users[0], "email")
    mute(users[1], "email", "comment.posted")
    mute(users[2], "email", "other.verb")
    send(Audience.users(users), "comment.posted", title="Hi & bye", channels=["email"])
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users[2:])
    message = mail.outbox[0]
    assert message.subject == "Hi & bye"
    assert message.from_email == "noreply@example.com"
    assert "Hi & bye" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert "Hi &amp; bye" in message.alternatives[0][0]
    rows = sends()
    assert len(rows) == 3 and {r.state for r in rows} == {"sent"}
    assert all(r.provider_message_id.startswith("<") and r.sent_at for r in rows)
    assert all(r.attempts == 1 for r in rows)


def test_without_the_email_channel_nothing_is_sent(users, send):
    send(Audience.users(users), "x")
    assert mail.outbox == [] and sends() == []


@override_settings(OFFCHAT_NOTIFY={**SETTINGS, "EMAIL_BATCH_SIZE": 2})
def test_one_connection_per_batch(users, send):
    send(Audience.users(users), "x", channels=["email"])
    assert len(mail.outbox) == 5
    assert CountingBackend.opened == 3  # 2 + 2 + 1


@override_settings(OFFCHAT_NOTIFY={**SETTINGS, "MANDATORY_VERBS": ["security"]})
def test_a_mandatory_verb_reaches_a_user_who_muted_the_channel(users, send):
    mute(users[0], "email")
    send(Audience.users(users[:1]), "security", channels=["email"])
    assert len(mail.outbox) == 1
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers  # cannot be muted


def test_a_permanent_failure_fails_that_send_only_and_is_never_retried(users, send):
    type(users[0]).objects.filter(pk=users[0].pk).update(email="")
    type(users[1]).objects.filter(pk=users[1].pk).update(email="not an address")
    CountingBackend.refuse = {users[2].email}
    event = send(Audience.users(users), "x", channels=["email"])
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users[3:])
    failed = {r.recipient_id: r.last_error for r in sends("failed")}
    assert failed.keys() == {users[0].pk, users[1].pk, users[2].pk}
    assert "no email address" in failed[users[0].pk]
    assert "valid email address" in failed[users[1].pk]
    assert "SMTPRecipientsRefused" in failed[users[2].pk]
    # Again: nothing pending, nothing sent twice
    assert channel_jobs.deliver_channel(event.pk, "email") == 0
    assert len(mail.outbox) == 2


def test_a_transient_failure_keeps_the_rest_pending_and_a_retry_sends_it_once(users, send):
    CountingBackend.drop_after = 2
    event = send(Audience.users(users), "x", channels=["email"])  # sync: logged, pending
    assert len(mail.outbox) == 2
    assert len(sends("sent")) == 2 and len(sends("pending")) == 3
    assert all("SMTPServerDisconnected" in r.last_error for r in sends("pending"))
    with pytest.raises(TransientDeliveryError, match="3 send"):
        channel_jobs.deliver_channel(event.pk, "email")
    # When: the server is back
    CountingBackend.drop_after = None
    assert channel_jobs.deliver_channel(event.pk, "email") == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
    assert {r.attempts for r in sends() if r.recipient_id in {u.pk for u in users[2:]}} == {3}


@override_settings(OFFCHAT_NOTIFY={**SETTINGS, "MAX_ATTEMPTS": 2})
def test_a_send_that_keeps_failing_transiently_fails_after_max_attempts(users, send):
    CountingBackend.drop_after = 0
    event = send(Audience.users(users[:1]), "x", channels=["email"])
    with pytest.raises(TransientDeliveryError):
        channel_jobs.deliver_channel(event.pk, "email")
    [row] = sends()
    assert row.state == "failed" and "after 2 attempts" in row.last_error


def test_the_relay_sends_what_a_lost_job_left_pending(users, send):
    CountingBackend.drop_after = 0
    send(Audience.users(users), "x", channels=["email"])
    assert mail.outbox == [] and len(sends("pending")) == 5
    assert relay_channels() == []  # not overdue yet
    CountingBackend.drop_after = None
    ChannelSend.objects.update(created_at=timezone.now() - timedelta(hours=1))
    [(event_id, channel)] = relay_channels()
    assert channel == "email" and len(mail.outbox) == 5 and len(sends("sent")) == 5


def test_per_verb_templates_and_the_language_hook(users, settings, send):
    settings.LANGUAGES = [("en", "English"), ("fr", "French"), ("de", "German")]
    settings.LANGUAGE_CODE = "de"
    with override_settings(OFFCHAT_NOTIFY={**SETTINGS, "EMAIL_LANGUAGE": "first_name"}):
        type(users[0]).objects.filter(pk=users[0].pk).update(first_name="fr")
        send(Audience.users(users[:2]), "test.lang", title="T", data={"n": 7}, channels=["email"])
    subjects = {m.to[0]: m for m in mail.outbox}
    assert subjects[users[0].email].subject == "[fr] T second line"  # one line, in French
    assert subjects[users[1].email].subject == "[de] T second line"  # LANGUAGE_CODE
    assert subjects[users[0].email].body.strip() == "custom body: T 7"
    assert subjects[users[0].email].alternatives  # body.html from the default


def pick_language(user):
    return "fr"


def test_the_language_hook_can_be_a_function(users, send):
    with override_settings(
        OFFCHAT_NOTIFY={**SETTINGS, "EMAIL_LANGUAGE": f"{__name__}.pick_language"}
    ):
        send(Audience.users(users[:1]), "test.lang", title="T", channels=["email"])
    assert mail.outbox[0].subject.startswith("[fr]")


def test_a_verb_that_is_not_a_safe_path_uses_the_default_templates():
    assert email._names("../secret", "subject.txt") == ["offchat_notify/email/default/subject.txt"]


def test_subjects_never_carry_a_newline_and_django_refuses_one_anyway():
    assert email.one_line("a\r\nBcc: x@example.com\n") == "a Bcc: x@example.com"
    with pytest.raises(ValueError):  # BadHeaderError until Django 6.1, a ValueError
        EmailMessage("a\nBcc: x@example.com", "body", to=["to@example.com"]).message()


def test_one_click_unsubscribe_headers(users, send):
    send(Audience.users(users[:1]), "comment.posted", channels=["email"])
    headers = mail.outbox[0].extra_headers
    assert headers["List-Unsubscribe"].startswith("<https://example.com/notifications/unsubscribe/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"][1:-1] in mail.outbox[0].body


@override_settings(OFFCHAT_NOTIFY={"BACKEND": "sync"})
def test_without_a_site_url_there_is_no_unsubscribe_header(users, send):
    send(Audience.users(users[:1]), "comment.posted", channels=["email"])
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


class FakeClock:
    """A monotonic clock that moves only when the job sleeps."""

    def __init__(self):
        self.now, self.sent_at = 1000.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.now += seconds


class StampingBackend(CountingBackend):
    clock: FakeClock

    def send_messages(self, messages):
        StampingBackend.clock.sent_at.append(StampingBackend.clock.now)
        return super().send_messages(messages)


@override_settings(OFFCHAT_NOTIFY={**SETTINGS, "EMAIL_RATE_LIMIT": 10, "EMAIL_BATCH_SIZE": 2})
def test_the_rate_limit_spaces_every_message_across_batches(users, send, settings):
    CountingBackend.drop_after = 0
    event = send(Audience.users(users), "x", channels=["email"])
    CountingBackend.drop_after = None
    StampingBackend.clock = clock = FakeClock()
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": f"{__name__}.StampingBackend"}}
    else:
        settings.EMAIL_BACKEND = f"{__name__}.StampingBackend"
    assert channel_jobs.deliver_channel(event.pk, "email", sleep=clock.sleep, clock=clock) == 5
    # 5 messages in 3 batches, 0.1 s apart: never two within a tenth of a second
    gaps = [b - a for a, b in zip(clock.sent_at, clock.sent_at[1:], strict=False)]
    assert len(clock.sent_at) == 5 and gaps == pytest.approx([0.1] * 4)


def test_transient_and_permanent_errors_are_told_apart():
    assert email.is_transient(smtplib.SMTPServerDisconnected())
    assert email.is_transient(ConnectionRefusedError())
    assert email.is_transient(smtplib.SMTPResponseException(421, b"busy"))
    assert email.is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"greylisted")}))
    assert not email.is_transient(smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no")}))
    assert not email.is_transient(smtplib.SMTPDataError(554, b"rejected"))
    assert not email.is_transient(ValueError("newline"))

    class AnymailRecipientsRefused(Exception):  # what django-anymail raises, by name
        pass

    class AnymailAPIError(Exception):
        def __init__(self, status_code):
            self.status_code = status_code

    assert not email.is_transient(AnymailRecipientsRefused())
    assert email.is_transient(AnymailAPIError(429)) and email.is_transient(AnymailAPIError(503))
    assert not email.is_transient(AnymailAPIError(400))


@pytest.mark.parametrize("args", [(), (1,), ("1", "email"), (1, 2), (1, "email", 3)])
def test_a_malformed_deliver_channel_job_is_poison(args):
    with pytest.raises(PoisonMessage, match="deliver_channel"):
        check_args("deliver_channel", args)


def test_a_job_for_a_missing_event_or_channel_does_nothing(users, send):
    assert channel_jobs.deliver_channel(10**12, "email") is None
    event = send(Audience.users(users[:1]), "x", channels=["webpush"])
    assert channel_jobs.deliver_channel(event.pk, "email") == 0
    assert sends() == [] and mail.outbox == []  # webpush sends nothing yet


def test_the_relay_leaves_alone_a_job_that_is_running_and_takes_over_a_dead_one(users, send):
    CountingBackend.drop_after = 0
    event = send(Audience.users(users), "x", channels=["email"])
    CountingBackend.drop_after = None
    ChannelSend.objects.update(created_at=timezone.now() - timedelta(hours=1))
    first = ChannelSend.objects.order_by("id").first()
    # A job claimed a batch just now: it is running
    ChannelSend.objects.filter(pk=first.pk).update(claimed_at=timezone.now())
    assert relay_channels() == []
    # Its lease ran out: it died; the relay sends everything pending again, once
    old = timezone.now() - timedelta(seconds=channel_jobs.lease() + 1)
    ChannelSend.objects.filter(pk=first.pk).update(claimed_at=old)
    assert relay_channels() == [(event.pk, "email")]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)


def test_a_long_unsubscribe_url_is_never_encoded_or_split():
    # RFC 2369: the URL in angle brackets, one word. Python's default email
    # policy (Django 6) would RFC 2047-encode a word longer than 78 characters.
    import email.policy
    from email import message_from_string

    from offchat_notify.channels.email import Message

    url = "https://chat.example.com/notifications/unsubscribe/" + "t" * 180 + "/"
    message = Message(
        "Subject",
        "body",
        "a@example.com",
        ["b@example.com"],
        headers={"List-Unsubscribe": f"<{url}>"},
    )
    for built in (message.message(), message.message(**_smtp_policy(email.policy))):
        raw = built.as_bytes().decode()
        assert "=?" not in raw  # no encoded word anywhere
        parsed = message_from_string(raw)
        # Folding at whitespace (Django 5.2 puts the URL on a line of its own) is fine.
        assert " ".join(parsed["List-Unsubscribe"].split()) == f"<{url}>"
        assert url in raw  # the URL itself is never split


def _smtp_policy(policy_module):
    """The SMTP backend's policy argument on Django 6; Django 5.2 takes none."""
    import inspect

    from django.core.mail import EmailMultiAlternatives

    if "policy" in inspect.signature(EmailMultiAlternatives.message).parameters:
        return {"policy": policy_module.SMTP}
    return {}


# Rendering once per batch: what a template reads, and the same output as rendering each time


def test_tokens_are_signed_with_the_secret_key_of_now(settings, monkeypatch):
    from django.core import signing

    from offchat_notify.channels import unsubscribe

    now = signing.b62_encode(int(signing.time.time()))  # one timestamp for both tokens
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: now)
    token = unsubscribe.make_token(7, "email", "comment.posted")
    signer = signing.TimestampSigner(salt=unsubscribe.SALT)
    payload = {"u": "7", "c": "email", "v": "comment.posted"}
    assert token == signer.sign_object(payload, compress=True)  # zlib does not shorten it
    settings.SECRET_KEY = "another secret key, long enough to be one"
    other = unsubscribe.make_token(7, "email", "comment.posted")
    assert other != token
    monkeypatch.undo()
    assert unsubscribe.read_token(other) == unsubscribe.Unsubscribe("7", "email", "comment.posted")
    with pytest.raises(unsubscribe.BadToken):
        unsubscribe.read_token(token)  # the old key's


def test_a_long_verb_is_compressed_and_reads_back():
    from offchat_notify.channels import unsubscribe

    verb = "room.event." * 20
    token = unsubscribe.make_token(7, "email", verb)
    assert token.startswith(".")  # sign_object's mark of a compressed payload
    assert unsubscribe.read_token(token).verb == verb


def _candidates(count, seed=5):
    """Addresses near the plain ones: pieces of the right alphabets, of lengths
    around the limits, with now and then a character out of place."""
    import random

    rng = random.Random(seed)
    odd = ["", "", "", "", ".", "-", "@", " ", "é", '"', "\\", "!", "\n", "..", "xn--"]

    def run(alphabet, lengths):
        text = "".join(rng.choice(alphabet) for _ in range(rng.choice(lengths)))
        return text + rng.choice(odd) if rng.random() < 0.2 else text

    local = "aZ09_+-"
    host = "az09-"
    for _ in range(count):
        user = ".".join(run(local, [1, 2, 5, 30, 64]) for _ in range(rng.randint(1, 3)))
        labels = [run(host, [1, 2, 3, 61, 62, 63, 64]) for _ in range(rng.randint(1, 3))]
        tld = run("azAZ09-", [1, 2, 3, 63, 64])
        yield f"{user}@{'.'.join([*labels, tld])}"


def test_the_quick_address_check_accepts_only_what_validate_email_accepts():
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    accepted = 0
    for value in _candidates(30_000):
        if email._PLAIN_ADDRESS.fullmatch(value):
            accepted += 1
            validate_email(value)  # raises if the quick check was wrong
        else:  # and address() still asks validate_email about the rest
            user = type("U", (), {"get_email_field_name": lambda self: "email", "email": value})()
            try:
                validate_email(value)
            except ValidationError:
                with pytest.raises((ValueError, ValidationError)):
                    email.address(user)
            else:
                assert email.address(user) == value
    assert accepted > 300  # the check was put to the test


@pytest.mark.parametrize(
    "value",
    [
        "a@b",
        "a..b@example.com",
        ".a@example.com",
        "a@-x.com",
        "a@x-.com",
        "a@x.c",
        "a b@x.com",
        "a@x.com\n",
        "a@x..com",
        "é@example.com",
        "a@x.com.",
        "a@@x.com",
    ],
)
def test_an_invalid_address_is_refused(value):
    from django.core.exceptions import ValidationError

    user = type("U", (), {"get_email_field_name": lambda self: "email", "email": value})()
    with pytest.raises(ValidationError):
        email.address(user)


@pytest.mark.parametrize(
    "value",
    ["a@example.com", "A.b+c_d-e@mail-1.example.co", "bob@localhost", "x" * 65 + "@example.com"],
)
def test_a_valid_address_is_kept(value):
    user = type("U", (), {"get_email_field_name": lambda self: "email", "email": value})()
    assert email.address(user) == value
