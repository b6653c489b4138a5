"""A resolver that only lists ids, for the fan-out benchmark's ``listed`` method.

It reads a Group's member ids with a server-side cursor and yields them one by
one, as a resolver backed by a directory or an API would: offchat-notify
stages them (``COPY`` on PostgreSQL) and then writes set-based. The read is
part of the measured time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import Group, User

from offchat_notify.roles import ListedRoles


class GroupListedRoles(ListedRoles):
    def known(self, role: str) -> bool:
        return Group.objects.filter(name=role).exists()

    def members(self, role: str) -> Iterator[Any]:
        group_id = Group.objects.get(name=role).pk
        members = User.groups.through.objects.filter(group_id=group_id)
        yield from members.values_list("user_id", flat=True).iterator(chunk_size=10_000)
