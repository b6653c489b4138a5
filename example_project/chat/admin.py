from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import Conversation, Flag, Message

# offchat-notify registers its own Event and Notification admins.

# django-dramatiq registers an admin for its Task model, which only its
# AdminMiddleware fills (and offchat-notify does not need it): without that
# middleware the list is always empty, so it is not shown here.
with contextlib.suppress(ImportError):  # django-dramatiq not installed: nothing to hide
    from django_dramatiq.models import Task

    if admin.site.is_registered(Task):
        admin.site.unregister(Task)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        if self.value() == "yes":
            return queryset.filter(flag_count__gt=0)
        if self.value() == "no":
            return queryset.filter(flag_count=0)
        return queryset


class FlagInline(admin.TabularInline):
    model = Flag
    extra = 0
    fields = ["flagged_by", "reason", "created_at"]
    raw_id_fields = ["flagged_by"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "sender", "short_text", "flags", "created_at"]
    list_filter = [FlaggedFilter, "conversation", "created_at"]
    search_fields = ["text", "sender__username"]
    list_select_related = ["conversation", "sender"]
    raw_id_fields = ["sender"]
    date_hierarchy = "created_at"
    inlines = [FlagInline]
    actions = ["clear_flags"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).annotate(flag_count=Count("flags"))

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        return message.text if len(message.text) <= 60 else f"{message.text[:59]}…"

    @admin.display(description="flags", ordering="flag_count")
    def flags(self, message: Message) -> int:
        return message.flag_count  # type: ignore[attr-defined]

    def has_clear_flags_permission(self, request: HttpRequest) -> bool:
        """Clearing deletes Flag rows: it takes the permission to delete flags."""
        return request.user.has_perm("chat.delete_flag")

    @admin.action(
        description="Clear the flags of the selected messages", permissions=["clear_flags"]
    )
    def clear_flags(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        deleted, _ = Flag.objects.filter(message_id__in=ids).delete()
        self.message_user(request, f"{deleted} flag(s) cleared.")


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["id", "message", "flagged_by", "reason", "created_at"]
    list_select_related = ["message__sender", "flagged_by"]
    search_fields = ["reason", "message__text", "flagged_by__username"]
    raw_id_fields = ["message", "flagged_by"]
    date_hierarchy = "created_at"
