from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    ChannelSend,
    Event,
    JobRun,
    Notification,
    NotificationQuerySet,
    Preference,
    PushSubscription,
)
from .ops.status import holder_label, snapshot
from .relay import retry

if TYPE_CHECKING:
    EventModelAdmin = admin.ModelAdmin[Event]
    NotificationModelAdmin = admin.ModelAdmin[Notification]
    JobRunModelAdmin = admin.ModelAdmin[JobRun]
    ChannelSendModelAdmin = admin.ModelAdmin[ChannelSend]
    PreferenceModelAdmin = admin.ModelAdmin[Preference]
    PushSubscriptionModelAdmin = admin.ModelAdmin[PushSubscription]
else:  # generic in django-stubs only: Django's ModelAdmin cannot be subscripted
    EventModelAdmin = NotificationModelAdmin = JobRunModelAdmin = admin.ModelAdmin
    ChannelSendModelAdmin = PreferenceModelAdmin = PushSubscriptionModelAdmin = admin.ModelAdmin


@admin.register(Event)
class EventAdmin(EventModelAdmin):
    """Events, read-only: editing one would bypass ``notify()``'s validation.

    Nobody adds or changes an Event here (an Event's audience and payload are
    checked once, by ``notify()``, and the relay delivers whatever the row
    holds; saving would also move ``updated_at``, which the relay reads).
    Deleting follows Django's delete permission. Retrying needs the change
    permission on Events (see :meth:`has_retry_permission`).
    """

    # Few, short columns: the list fits 1280 px beside its filters. The rest is
    # on each Event's page.
    list_display = ["id", "verb", "state", "recipient_count", "took", "created_at"]
    list_filter = ["state", "level", "verb", "created_at"]
    search_fields = ["verb", "title", "key", "last_error"]
    date_hierarchy = "created_at"
    raw_id_fields = ["actor"]
    readonly_fields = [
        "state",
        "attempts",
        "recipient_count",
        "skipped_count",
        "last_error",
        "created_at",
        "updated_at",
        "started_at",
        "delivered_at",
        "duration_ms",
    ]
    actions = ["retry_delivery"]
    change_list_template = "admin/offchat_notify/event/change_list.html"

    def get_urls(self) -> list[Any]:
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard, name="offchat_notify_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        """The figures of ``manage.py notify_status``, in the admin."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = snapshot()
        queues = status.broker.queues if status.broker is not None else []
        context = {
            **self.admin_site.each_context(request),
            "title": _("Notifications overview"),
            "opts": self.model._meta,
            "status": status,
            "taken_at": datetime.fromisoformat(status.taken_at),  # shown localized
            "scheduler": holder_label(status.scheduler),
            # Only the columns the broker knows: Redis counts no consumers,
            # RabbitMQ reports no in-flight messages.
            "show_in_flight": any(q.in_flight is not None for q in queues),
            "show_consumers": any(q.consumers is not None for q in queues),
        }
        return TemplateResponse(request, "admin/offchat_notify/dashboard.html", context)

    @admin.display(description=_("took"), ordering="duration_ms")
    def took(self, event: Event) -> str | None:
        """The delivery time, short (None: the admin's empty value)."""
        ms = event.duration_ms
        if ms is None:
            return None
        return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Retrying re-runs a delivery: it needs the change permission on Events,
        which no longer opens a change form (see :meth:`has_change_permission`)."""
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.action(description=_("Retry delivery of the selected events"), permissions=["retry"])
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        """Deliver the selected Events again. Rows already written are not duplicated."""
        ids = retry(queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext(
                "%(count)d event sent for delivery again.",
                "%(count)d events sent for delivery again.",
                len(ids),
            )
            % {"count": len(ids)},
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(NotificationModelAdmin):
    list_display = ["id", "recipient", "event", "created_at", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter), "event__verb", "created_at"]
    search_fields = ["event__verb", "event__title"]
    list_select_related = ["event", "recipient"]
    raw_id_fields = ["event", "recipient"]
    readonly_fields = ["created_at"]
    actions = ["mark_read", "mark_unread"]
    show_full_result_count = False

    @admin.action(description=_("Mark the selected notifications read"), permissions=["change"])
    def mark_read(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        count = queryset.mark_read()
        self.message_user(request, _("%(count)d marked read.") % {"count": count})

    @admin.action(description=_("Mark the selected notifications unread"), permissions=["change"])
    def mark_unread(self, request: HttpRequest, queryset: NotificationQuerySet) -> None:
        count = queryset.mark_unread()
        self.message_user(request, _("%(count)d marked unread.") % {"count": count})


@admin.register(JobRun)
class JobRunAdmin(JobRunModelAdmin):
    list_display = ["name", "last_started_at", "last_duration_ms", "runs", "last_error"]
    readonly_fields = [f.name for f in JobRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChannelSend)
class ChannelSendAdmin(ChannelSendModelAdmin):
    """The record of each email: read-only, what the worker wrote."""

    list_display = ["id", "channel", "recipient", "event", "state", "attempts", "sent_at"]
    list_filter = ["channel", "state"]
    list_select_related = ["event", "recipient"]
    readonly_fields = [f.name for f in ChannelSend._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Preference)
class PreferenceAdmin(PreferenceModelAdmin):
    list_display = ["user", "channel", "verb", "created_at"]
    list_filter = ["channel"]
    search_fields = ["verb"]
    raw_id_fields = ["user"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(PushSubscriptionModelAdmin):
    """A browser's push subscription: seen and deleted here, made by the browser only
    (its keys come from the browser's push service)."""

    list_display = ["id", "user", "user_agent", "created_at", "last_used_at"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = [f.name for f in PushSubscription._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
