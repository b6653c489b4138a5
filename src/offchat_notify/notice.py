"""What a registry rule returns: one ``notify()`` call, described."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Model

from .audience import Audience


@dataclasses.dataclass(frozen=True, kw_only=True)
class Notice:
    """What a rule returns: the arguments of one :func:`offchat_notify.api.notify` call."""

    audience: Audience
    verb: str
    title: str = ""
    body: str = ""
    level: str = "info"
    actor: Model | None = None
    target: Model | None = None
    data: dict[str, Any] | None = None
    key: str | None = None
    channels: list[str] | tuple[str, ...] | None = None

    def send(self) -> Any:
        from .api import notify  # needs the models: not at import, before apps are ready

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return notify(fields.pop("audience"), **fields)
