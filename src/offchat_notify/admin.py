from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Event, JobRun, Notification
from .ops.status import snapshot
from .relay import retry


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "verb",
        "title",
        "state",
        "recipient_count",
        "skipped_count",
        "attempts",
        "duration_ms",
        "created_at",
        "delivered_at",
    ]
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
        context = {
            **self.admin_site.each_context(request),
            "title": _("Notifications overview"),
            "opts": self.model._meta,
            "status": snapshot(),
        }
        return TemplateResponse(request, "admin/offchat_notify/dashboard.html", context)

    @admin.action(description=_("Retry delivery of the selected events"))
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
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "recipient", "event", "created_at", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter), "event__verb", "created_at"]
    search_fields = ["event__verb", "event__title"]
    list_select_related = ["event", "recipient"]
    raw_id_fields = ["event", "recipient"]
    readonly_fields = ["created_at"]
    actions = ["mark_read", "mark_unread"]
    show_full_result_count = False

    @admin.action(description=_("Mark the selected notifications read"))
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.mark_read()  # type: ignore[attr-defined]
        self.message_user(request, _("%(count)d marked read.") % {"count": count})

    @admin.action(description=_("Mark the selected notifications unread"))
    def mark_unread(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.mark_unread()  # type: ignore[attr-defined]
        self.message_user(request, _("%(count)d marked unread.") % {"count": count})


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["name", "last_started_at", "last_duration_ms", "runs", "last_error"]
    readonly_fields = [f.name for f in JobRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
