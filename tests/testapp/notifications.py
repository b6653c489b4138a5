"""Rules of the test host app, found by autodiscovery like a real project's."""

from __future__ import annotations

from offchat_notify import Audience, registry


@registry.on_create("testapp.Announcement")
def announcement_made(announcement):
    return registry.Notice(
        audience=Audience.staff(),
        verb="announcement.made",
        title=announcement.text,
        actor=announcement.author,
        target=announcement,
    )
