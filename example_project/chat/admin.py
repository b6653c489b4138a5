from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "sender", "short_text", "flagged", "created_at"]
    list_filter = ["flagged", "conversation", "created_at"]
    search_fields = ["text", "sender__username"]
    list_select_related = ["conversation", "sender"]
    raw_id_fields = ["sender"]
    date_hierarchy = "created_at"
    actions = ["flag", "unflag"]

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        return message.text if len(message.text) <= 60 else f"{message.text[:59]}…"

    @admin.action(description="Flag the selected messages")
    def flag(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self.message_user(request, f"{queryset.update(flagged=True)} message(s) flagged.")

    @admin.action(description="Unflag the selected messages")
    def unflag(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self.message_user(request, f"{queryset.update(flagged=False)} message(s) unflagged.")
