"""Create the demo's roles, users and conversation. Safe to run again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from chat.models import Conversation

PASSWORD = "demo1234"
ROLES = ["admin", "moderator", "member"]
#: username, role, is_staff and is_superuser (the Django admin)
USERS = [
    ("alice", "admin", True),
    ("bob", "moderator", False),
    ("carol", "member", False),
    ("dave", "member", False),
]
CONVERSATIONS = ["general"]


class Command(BaseCommand):
    help = (
        "Create the demo data: Groups admin/moderator/member, users alice (admin, "
        f"superuser), bob (moderator), carol and dave (members) with password "
        f"{PASSWORD!r}, and the conversation 'general'. Running it again changes nothing "
        "that is already there, except to restore each demo user's role and flags."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help=f"Set the demo users' passwords back to {PASSWORD!r} (hashing is slow, so "
            "by default a password is only set when the user is created).",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        created_users = []
        for username, role, is_admin in USERS:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@example.com"},
            )
            changed = created
            if user.is_staff != is_admin or user.is_superuser != is_admin or not user.is_active:
                user.is_staff = user.is_superuser = is_admin
                user.is_active = True
                changed = True
            if created or options["reset_passwords"]:
                user.set_password(PASSWORD)
                changed = True
            if changed:
                user.save()
            user.groups.set([groups[role]])
            if created:
                created_users.append(username)
        created_conversations = [
            name for name in CONVERSATIONS if Conversation.objects.get_or_create(name=name)[1]
        ]

        if created_users or created_conversations:
            made = created_users + [f"#{name}" for name in created_conversations]
            self.stdout.write(self.style.SUCCESS(f"Created: {', '.join(made)}."))
        else:
            self.stdout.write("Demo data already present; nothing created.")
        self.stdout.write(f"Demo users (password {PASSWORD}, unless changed since):")
        width = max(len(username) for username, _role, _admin in USERS)
        for username, role, is_admin in USERS:
            note = "  + Django admin (/admin/)" if is_admin else ""
            self.stdout.write(f"  {username:<{width}}  {PASSWORD}  {role}{note}")
