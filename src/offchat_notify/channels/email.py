"""The email channel: render one message per recipient, send a batch on one connection.

Through Django's own mail machinery: ``EMAIL_BACKEND`` (SMTP, django-anymail's
providers, a test backend) and ``DEFAULT_FROM_EMAIL``. A batch opens one
connection (``get_connection()``) and sends each message on it with
``send_messages``, so that one refused address fails alone.

Templates, per verb with a default: ``offchat_notify/email/<verb>/subject.txt``,
``body.txt`` and ``body.html`` (optional), else ``offchat_notify/email/default/``.
Each is rendered in the recipient's language (``EMAIL_LANGUAGE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.policy
import inspect
import re
import smtplib
from collections.abc import Callable
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection

try:  # Django 6.1+
    from django.core.mail import mailers as _mailers  # type: ignore[attr-defined]
except ImportError:  # Django 5.2, 6.0
    _mailers = None
from django.core.mail.utils import DNS_NAME
from django.core.validators import validate_email
from django.template import Context, TemplateDoesNotExist
from django.template.loader import select_template
from django.utils import translation
from django.utils.module_loading import import_string

from offchat_notify.conf import get_settings
from offchat_notify.models import ChannelSend
from offchat_notify.preferences import mandatory_verbs

from . import unsubscribe

#: django-anymail's errors about the message itself, by class name (anymail is optional).
_ANYMAIL_PERMANENT = {"AnymailRecipientsRefused", "AnymailInvalidAddress"}
#: A verb names its template folder only if it is this safe as a path.
_SAFE_VERB = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


#: Whether Django builds messages with the modern email API (Django 6: a
#: ``policy`` argument to ``EmailMessage.message()``).
_POLICY_ARGUMENT = "policy" in inspect.signature(EmailMultiAlternatives.message).parameters
#: RFC 5322's limit for a header line. The default policy folds at 78, and a
#: word longer than that (the unsubscribe URL) would be RFC 2047-encoded,
#: which a List-Unsubscribe header must never be (RFC 2369).
_MAX_LINE = 998


class Message(EmailMultiAlternatives):
    """An email whose ``List-Unsubscribe`` URL stays one unencoded word
    whatever its length. On Django 6 (the modern email API), headers are
    folded at 998 characters, not 78. Django 5.2's legacy API never encodes
    it, and may fold the header before the ``<`` (folding white space, which
    RFC 2369 allows and a reader unfolds)."""

    def message(self, *args: Any, **kwargs: Any) -> Any:
        if _POLICY_ARGUMENT:
            policy = kwargs.get("policy") or email.policy.default
            kwargs["policy"] = policy.clone(max_line_length=_MAX_LINE)
        return super().message(*args, **kwargs)


@dataclasses.dataclass
class Outcome:
    """What became of a batch: sent ({send id: message id}), failed for good
    ({send id: error}), and the transient error that stopped it, if any."""

    sent: dict[int, str] = dataclasses.field(default_factory=dict)
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    transient: str | None = None


def is_transient(exc: BaseException) -> bool:
    """Worth trying again later: the server is away, busy, or answered 4xx (or a
    provider's 429 or 5xx); not a refused address or a 5xx for this message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
        return True  # includes SMTPConnectError, ConnectionRefusedError, socket timeouts
    if {c.__name__ for c in type(exc).__mro__} & _ANYMAIL_PERMANENT:
        return False
    status = getattr(exc, "status_code", None)  # django-anymail's AnymailAPIError
    if isinstance(status, int):
        return status == 429 or status >= 500
    return not isinstance(exc, (ValueError, TypeError, LookupError))


def language(user: Any) -> str:
    """The language to write to ``user`` in (``EMAIL_LANGUAGE``; else ``LANGUAGE_CODE``)."""
    hook = get_settings().EMAIL_LANGUAGE
    code: Any = None
    if hook and "." in hook:
        code = import_string(hook)(user)
    elif hook:
        code = getattr(user, hook, None)
    return code if isinstance(code, str) and code else settings.LANGUAGE_CODE


def address(user: Any) -> str:
    """``user``'s email address; ValueError if there is none or it is not valid."""
    value = getattr(user, user.get_email_field_name(), "") or ""
    if not value:
        raise ValueError("the user has no email address")
    if type(value) is not str or not _PLAIN_ADDRESS.fullmatch(value):
        validate_email(value)  # ValidationError, a ValueError
    return str(value)


#: An address Django's ``validate_email`` accepts, checked faster: a dot-atom
#: of ASCII letters, digits and ``_+-`` (64 characters at most), ``@``, ASCII
#: host name labels and a top-level domain of letters (254 in all at most).
#: Any other address is up to ``validate_email``.
_PLAIN_ADDRESS = re.compile(
    r"(?=.{1,254}\Z)(?=[^@]{1,64}@)"
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII | re.DOTALL,
)


def one_line(text: str) -> str:
    """``text`` on one line: a subject never carries CR or LF into the headers."""
    return " ".join(text.split())


def _names(verb: str, name: str) -> list[str]:
    names = [f"offchat_notify/email/{verb}/{name}"] if _SAFE_VERB.match(verb) else []
    return [*names, f"offchat_notify/email/default/{name}"]


def templates(verb: str) -> tuple[Any, Any, Any | None]:
    """The subject, text and HTML (or None) templates of ``verb``, looked up once a batch."""
    try:
        html = select_template(_names(verb, "body.html"))
    except TemplateDoesNotExist:
        html = None
    return (
        select_template(_names(verb, "subject.txt")),
        select_template(_names(verb, "body.txt")),
        html,
    )


def build(
    send: ChannelSend, found: tuple[Any, Any, Any | None] | None = None
) -> EmailMultiAlternatives:
    """The message of one send, rendered in its recipient's language."""
    with translation.override(language(send.recipient)):
        return _build(send, found or templates(send.event.verb))


def _build(send: ChannelSend, found: tuple[Any, Any, Any | None]) -> EmailMultiAlternatives:
    """The message of one send, in the language active now."""
    event, user = send.event, send.recipient
    subject_t, text_t, html_t = found
    to = address(user)
    link = None
    if event.verb not in mandatory_verbs():
        link = unsubscribe.url(user.pk, send.channel, event.verb)
    values = {
        "event": event,
        "user": user,
        "verb": event.verb,
        "title": event.title,
        "body": event.body,
        "data": event.data,
        "unsubscribe_url": link,
        "LANGUAGE_CODE": translation.get_language(),
    }
    render = _renderer(subject_t, values)
    subject = one_line(render(subject_t))
    text = render(text_t)
    html = render(html_t) if html_t is not None else None
    headers = {"Message-ID": make_msgid(domain=DNS_NAME)}
    if link:
        headers["List-Unsubscribe"] = f"<{link}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message = Message(subject[:998], text, None, [to], headers=headers)
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


def _renderer(first: Any, values: dict[str, Any]) -> Any:
    """A function rendering a template with ``values``. For Django's template
    engine, one Context serves the three templates of a message (each render
    pushes its own state onto it), with the engine's autoescaping (the text
    templates turn it off themselves); another engine renders the dict."""
    engine = getattr(getattr(first, "backend", None), "engine", None)
    if engine is None or not hasattr(first, "template"):
        return lambda template: template.render(values)
    context = Context(values, autoescape=engine.autoescape)
    return lambda template: template.template.render(context)


def message_id(message: EmailMultiAlternatives) -> str:
    """The provider's id of a sent message (django-anymail's), else its Message-ID."""
    status = getattr(message, "anymail_status", None)
    found = getattr(status, "message_id", None)
    return str(found) if found else str(message.extra_headers.get("Message-ID", ""))


def send_batch(
    sends: list[ChannelSend], before: Callable[[Outcome], None] | None = None
) -> Outcome:
    """Send one batch on one connection; stop at the first transient error.

    The messages are built first, a language at a time (one activation per
    language, not per message), then sent in the batch's order, each after
    ``before(outcome so far)`` (the job's pacing and heartbeat).
    """
    outcome = Outcome()
    found: dict[str, tuple[Any, Any, Any | None]] = {}
    by_language: dict[str, list[ChannelSend]] = {}
    for send in sends:
        by_language.setdefault(language(send.recipient), []).append(send)
    messages: dict[int, EmailMultiAlternatives] = {}
    for code, group in by_language.items():
        with translation.override(code):
            for send in group:
                verb = send.event.verb
                try:
                    if verb not in found:
                        found[verb] = templates(verb)
                    messages[send.pk] = _build(send, found[verb])
                except (ValueError, ValidationError) as exc:  # no address, an invalid one
                    outcome.failed[send.pk] = f"permanent: {_text(exc)}"
    built = [(send.pk, messages[send.pk]) for send in sends if send.pk in messages]
    if not built:
        return outcome
    connection = _connection()
    try:
        connection.open()
        for pk, message in built:
            if before is not None:
                before(outcome)
            try:
                connection.send_messages([message])
            except Exception as exc:
                if is_transient(exc):
                    outcome.transient = f"{type(exc).__name__}: {_text(exc)}"
                    return outcome
                outcome.failed[pk] = f"permanent: {type(exc).__name__}: {_text(exc)}"
            else:
                outcome.sent[pk] = message_id(message)
    except Exception as exc:  # opening the connection
        outcome.transient = f"{type(exc).__name__}: {_text(exc)}"
    finally:
        with contextlib.suppress(Exception):  # a connection already gone: sent is sent
            connection.close()
    return outcome


def _connection() -> Any:
    """A connection of the default mailer: ``mailers.default`` where Django has
    mailers (6.1+: ``MAILERS``, or ``EMAIL_BACKEND`` until it is removed), else
    ``get_connection()`` (``EMAIL_BACKEND``). Without ``EMAIL_TIMEOUT``, an
    SMTP connection times out after ``STUCK_AFTER / 2`` seconds."""
    connection = _mailers.default if _mailers is not None else get_connection()
    if getattr(connection, "timeout", 0) is None:
        # Django's SMTP backend without EMAIL_TIMEOUT waits for ever on a hung
        # server, past the batch's lease: give up well before it runs out.
        connection.timeout = get_settings().STUCK_AFTER / 2
    return connection


def _text(exc: BaseException) -> str:
    messages = getattr(exc, "messages", None)  # ValidationError
    return "; ".join(map(str, messages)) if messages else str(exc) or type(exc).__name__
