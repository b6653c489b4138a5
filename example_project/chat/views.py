"""The chat pages, and the inbox built on offchat-notify's models.

The notification is wired explicitly here, in the view that saves the
message. (A later version moves it to a registry rule in chat/notifications.py,
with no change to what users see.)
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from offchat_notify import Audience, notify
from offchat_notify.models import Notification

from .forms import MessageForm
from .models import Conversation, Message

#: How many messages a conversation page shows (the newest ones).
MESSAGES_SHOWN = 100
NOTIFICATIONS_PER_PAGE = 25


@login_required
def index(request: HttpRequest) -> HttpResponse:
    conversations = Conversation.objects.all()
    return render(request, "chat/index.html", {"conversations": conversations})


@login_required
def conversation(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a conversation; on POST, post a message and notify the admins."""
    conv = get_object_or_404(Conversation, pk=pk)
    if request.method == "POST":
        form = MessageForm(request.POST)
        if form.is_valid():
            user = request.user
            # One transaction: the message and its Event are saved together, and
            # offchat-notify hands the Event to the backend only after commit.
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conv, sender=user, text=form.cleaned_data["text"]
                )
                notify(
                    Audience.role("admin").exclude(user),
                    "message.sent",
                    title=f"New message from {user}",
                    actor=user,
                    target=message,
                )
            messages.success(request, "Message sent.")
            return redirect(message)
    else:
        form = MessageForm()
    newest = conv.messages.select_related("sender").order_by("-created_at", "-id")
    recent = list(newest[:MESSAGES_SHOWN])[::-1]
    return render(
        request,
        "chat/conversation.html",
        {"conversation": conv, "chat_messages": recent, "form": form},
    )


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The signed-in user's inbox, newest first."""
    inbox = (
        Notification.objects.for_user(request.user)
        .with_event()
        # with_event() joins the Event and its actor, not the target: fetch the
        # targets (chat messages) in one query per content type, not one per row.
        .prefetch_related("event__target")
    )
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


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect(reverse("chat:notifications"))
