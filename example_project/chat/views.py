"""The chat pages, and the inbox built on offchat-notify's models.

The views only save the chat's own models. Who gets notified of what is
decided in chat/notifications.py, by rules offchat-notify runs when a Message
or a Flag is created.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from offchat_notify import preferences as notify_preferences
from offchat_notify.models import Notification

from .forms import FlagForm, MessageForm
from .models import Conversation, Flag, Message

#: What a user may mute on the preferences page: (verb, what it is), per channel.
MUTABLE_VERBS = [
    ("message.sent", "A new message (admins)"),
    ("message.flagged", "A flagged message (moderators)"),
]
MUTABLE_CHANNELS = [("email", "Email"), ("webpush", "Push")]

#: How many messages a conversation page shows (the newest ones).
MESSAGES_SHOWN = 100
NOTIFICATIONS_PER_PAGE = 25


@login_required
def index(request: HttpRequest) -> HttpResponse:
    conversations = Conversation.objects.annotate(message_count=Count("messages"))
    return render(request, "chat/index.html", {"conversations": conversations})


@login_required
def conversation(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a conversation; on POST, post a message."""
    conv = get_object_or_404(Conversation, pk=pk)
    if request.method == "POST":
        form = MessageForm(request.POST)
        if form.is_valid():
            # One transaction: the message and the Event its rule writes are
            # saved together, and the Event is delivered only after commit.
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conv, sender=request.user, text=form.cleaned_data["text"]
                )
            messages.success(request, "Message sent.")
            return redirect(message)
    else:
        form = MessageForm()
    newest = (
        conv.messages.select_related("sender")
        .annotate(
            flag_count=Count("flags"),
            flagged_by_me=Exists(
                Flag.objects.filter(message=OuterRef("pk"), flagged_by=request.user)
            ),
        )
        .order_by("-created_at", "-id")
    )
    recent = list(newest[:MESSAGES_SHOWN])[::-1]
    return render(
        request,
        "chat/conversation.html",
        {"conversation": conv, "chat_messages": recent, "form": form},
    )


@login_required
@require_POST
def flag_message(request: HttpRequest, pk: int) -> HttpResponse:
    """Flag a message for the moderators (once per user and message)."""
    message = get_object_or_404(Message, pk=pk)
    if message.sender_id == request.user.pk:
        messages.error(request, "You cannot flag your own message.")
        return redirect(message)
    form = FlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return redirect(message)
    with transaction.atomic():
        _flag, created = Flag.objects.get_or_create(
            message=message,
            flagged_by=request.user,
            defaults={"reason": form.cleaned_data["reason"].strip()},
        )
    if created:
        messages.success(request, "Message flagged.")
    else:
        messages.info(request, "You have already flagged this message.")
    return redirect(message)


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The signed-in user's inbox, newest first."""
    # with_event() joins each Event and its actor and prefetches the targets
    # (the chat messages): a fixed number of queries, whatever the page size.
    inbox = Notification.objects.for_user(request.user).with_event()
    page = Paginator(inbox, NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    unread = Notification.objects.for_user(request.user).unread().count()
    return render(
        request,
        "chat/notifications.html",
        {"page": page, "unread_notifications": unread},
    )


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the user's notifications read, then go to ``next`` or back to the inbox."""
    notification = get_object_or_404(Notification.objects.for_user(request.user), pk=pk)
    notification.mark_read()
    return _back(request)


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = Notification.objects.for_user(request.user).mark_read()
    if count:
        messages.success(request, f"{count} notification(s) marked read.")
    return _back(request)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Mute or unmute a verb per channel: offchat-notify's preferences, one form.

    A ticked box means "send me this"; the inbox always gets everything.
    """
    user = request.user
    if request.method == "POST":
        for verb, _label in MUTABLE_VERBS:
            for channel, _name in MUTABLE_CHANNELS:
                wanted = request.POST.get(f"{verb}:{channel}") == "on"
                if wanted:
                    notify_preferences.unmute(user, channel, verb)
                else:
                    notify_preferences.mute(user, channel, verb)
        messages.success(request, "Preferences saved.")
        return redirect("chat:preferences")
    rows = [
        {
            "verb": verb,
            "label": label,
            "channels": [
                {
                    "name": f"{verb}:{channel}",
                    "label": name,
                    "on": not notify_preferences.is_muted(user, channel, verb),
                }
                for channel, name in MUTABLE_CHANNELS
            ],
        }
        for verb, label in MUTABLE_VERBS
    ]
    push_enabled = bool(settings.OFFCHAT_NOTIFY.get("WEBPUSH_VAPID_PRIVATE_KEY"))
    return render(
        request,
        "chat/preferences.html",
        {"rows": rows, "channels": MUTABLE_CHANNELS, "push_enabled": push_enabled},
    )


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect(reverse("chat:notifications"))
