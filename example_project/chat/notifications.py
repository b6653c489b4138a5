"""How the chat notifies: the only module of this project that knows offchat-notify.

offchat-notify imports ``notifications`` from every installed app at startup
(like ``admin``), so these rules are registered without any other wiring: the
views just save models. Each rule runs inside the transaction that saves the
instance; the Event it returns is written there, and delivered after commit
(in-process with the sync backend, by a Dramatiq worker with REDIS_URL).
"""

from __future__ import annotations

from offchat_notify import Audience, registry

from .models import Flag, Message


@registry.on_create("chat.Message")
def message_sent(message: Message) -> registry.Notice:
    """A new message notifies the admins, except its sender."""
    return registry.Notice(
        audience=Audience.role("admin").exclude(message.sender_id),
        verb="message.sent",
        title=f"New message from {message.sender} in #{message.conversation}",
        actor=message.sender,
        target=message,
    )


@registry.on_create("chat.Flag")
def message_flagged(flag: Flag) -> registry.Notice | None:
    """A message flagged by a member notifies the moderators.

    Flags from anyone else (a moderator or an admin) notify no one: a rule
    skips by returning None.
    """
    flagger = flag.flagged_by
    if not flagger.groups.filter(name="member").exists():
        return None
    message = flag.message
    return registry.Notice(
        audience=Audience.role("moderator").exclude(flagger.pk),
        verb="message.flagged",
        title=f"{flagger} flagged a message from {message.sender} in #{message.conversation}",
        body=flag.reason,
        level="warning",
        actor=flagger,
        target=message,
        data={"flag_id": flag.pk},
        # The channels besides the inbox come from CHANNELS_BY_VERB (settings):
        # email, and web push when the demo has a VAPID key pair.
    )
