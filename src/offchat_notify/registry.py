"""The signal registry: host projects wire their models to notifications.

Rules live in ``<app>/notifications.py`` of host apps, found by
autodiscovery when the app registry is ready::

    from offchat_notify import Audience, registry

    @registry.on_create("chat.Message")
    def message_sent(message):
        return registry.Notice(
            audience=Audience.role("admin").exclude(message.sender_id),
            verb="message.sent",
            title=f"New message from {message.sender}",
        )

A rule receives the instance (or, for ``on_signal``, the signal's sender and
keyword arguments) and returns a :class:`Notice`, or ``None`` to skip. The
Event is written inside the host's transaction, in a savepoint, and
dispatched on commit. A rule that raises is logged with its name and skipped,
so it never breaks the host's save, unless ``OFFCHAT_NOTIFY["RAISE_RULE_ERRORS"]``
is on (for tests).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.apps import apps
from django.db import router, transaction
from django.db.models import Model, signals
from django.dispatch import Signal
from django.utils.module_loading import autodiscover_modules

from .conf import get_settings
from .exceptions import AlreadyRegistered, NotRegistered, RegistrationError
from .notice import Notice

logger = logging.getLogger(__name__)

#: The model events a rule can listen to, and the Django signal behind each.
MODEL_EVENTS = {
    "create": signals.post_save,
    "update": signals.post_save,
    "delete": signals.post_delete,
}


#: A rule: called with the instance (or with the signal's sender and keyword
#: arguments), it returns the Notice to send, or None.
_RuleFunc = Callable[..., Notice | None]
_R = TypeVar("_R", bound=_RuleFunc)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One registration: ``func`` runs on ``event`` of ``model`` (or on ``signal``)."""

    event: str
    func: _RuleFunc
    model: str | None = None  # "app_label.ModelName", for model events
    signal: Signal | None = None
    sender: Any = None
    where: str = ""  # file:line of the registration, for error messages

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"

    @property
    def key(self) -> tuple[Any, ...]:
        target = self.model if self.signal is None else (id(self.signal), self.sender)
        return (self.event, target, self.name)

    @property
    def dispatch_uid(self) -> str:
        return f"offchat_notify:{self.event}:{self.model or id(self.signal)}:{self.name}"

    def describe(self) -> str:
        on = self.model or f"{self.signal!r} from {self.sender!r}"
        return f"{self.name} on {self.event} of {on}"


class NotificationRegistry:
    """Holds the rules and connects each one to its signal.

    The module-level :data:`default` is the one host projects use (through this
    module's functions); tests may build their own.
    """

    Notice = Notice

    def __init__(self) -> None:
        self._registry: dict[tuple[Any, ...], Rule] = {}
        self._receivers: dict[tuple[Any, ...], Callable[..., None]] = {}

    # Registration

    def on_create(self, model: type[Model] | str) -> Callable[[_R], _R]:
        """Decorate a rule run when an instance of ``model`` is created."""
        return self._decorator("create", model=model)

    def on_update(self, model: type[Model] | str) -> Callable[[_R], _R]:
        """Decorate a rule run when an existing instance of ``model`` is saved."""
        return self._decorator("update", model=model)

    def on_delete(self, model: type[Model] | str) -> Callable[[_R], _R]:
        """Decorate a rule run after an instance of ``model`` is deleted."""
        return self._decorator("delete", model=model)

    def on_signal(self, signal: Signal, *, sender: Any = None) -> Callable[[_R], _R]:
        """Decorate a rule run when ``signal`` is sent (by ``sender``, if given).

        The rule is called with the signal's ``sender`` and keyword arguments.
        """
        if not isinstance(signal, Signal):
            raise RegistrationError(f"on_signal() takes a django.dispatch.Signal, not {signal!r}.")
        return self._decorator("signal", signal=signal, sender=sender)

    def _decorator(self, event: str, **target: Any) -> Callable[[_R], _R]:
        caller = sys._getframe(2)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"

        def register(func: _R) -> _R:
            self.register(func, event, where=where, **target)
            return func

        return register

    def register(
        self,
        func: _RuleFunc,
        event: str,
        *,
        model: type[Model] | str | None = None,
        signal: Signal | None = None,
        sender: Any = None,
        where: str = "",
    ) -> Rule:
        if not callable(func):
            raise RegistrationError(f"A rule must be callable, not {func!r}.")
        if event in MODEL_EVENTS:
            label = model._meta.label if isinstance(model, type) else model
            if not isinstance(label, str) or label.count(".") != 1:
                raise RegistrationError(
                    f"{event}: expected a model class or an 'app_label.ModelName' string, "
                    f"got {model!r}."
                )
            rule = Rule(event, func, model=label, where=where)
        elif event == "signal":
            rule = Rule(event, func, signal=signal, sender=sender, where=where)
        else:
            raise RegistrationError(f"Unknown event {event!r}; use create, update, delete, signal.")
        first = self._registry.get(rule.key)
        if first is not None:
            raise AlreadyRegistered(
                f"The rule {rule.describe()} is already registered (first at {first.where}). "
                "Rename the function or unregister the first one."
            )
        self._registry[rule.key] = rule
        if rule.signal is not None or apps.models_ready:
            self._connect(rule)
        return rule

    def unregister(self, func: Callable[..., Any]) -> None:
        """Remove every rule that runs ``func``, and disconnect its signals."""
        rules = [rule for rule in self._registry.values() if rule.func is func]
        if not rules:
            raise NotRegistered(f"{func!r} is not a registered rule.")
        for rule in rules:
            self._disconnect(rule)
            del self._registry[rule.key]

    def get_rules(self) -> list[Rule]:
        return list(self._registry.values())

    def clear(self) -> None:
        for rule in list(self._registry.values()):
            self.unregister(rule.func)

    # Wiring

    def connect_all(self) -> None:
        """Connect the rules registered before the app registry was ready."""
        for rule in self._registry.values():
            if rule.key not in self._receivers:
                self._connect(rule)

    def model_for(self, rule: Rule) -> type[Model] | None:
        try:
            return apps.get_model(rule.model)  # type: ignore[arg-type]
        except (LookupError, ValueError):
            return None

    def _connect(self, rule: Rule) -> None:
        if rule.signal is not None:
            receiver = self._signal_receiver(rule)
            rule.signal.connect(
                receiver, sender=rule.sender, weak=False, dispatch_uid=rule.dispatch_uid
            )
        else:
            model = self.model_for(rule)
            if model is None:  # reported by the system check offchat_notify.E009
                logger.error(
                    "Rule %s names unknown model %r; it will never run.", rule.name, rule.model
                )
                return
            receiver = self._model_receiver(rule)
            MODEL_EVENTS[rule.event].connect(
                receiver, sender=model, weak=False, dispatch_uid=rule.dispatch_uid
            )
        self._receivers[rule.key] = receiver

    def _disconnect(self, rule: Rule) -> None:
        if self._receivers.pop(rule.key, None) is None:
            return
        if rule.signal is not None:
            rule.signal.disconnect(sender=rule.sender, dispatch_uid=rule.dispatch_uid)
        else:
            MODEL_EVENTS[rule.event].disconnect(
                sender=self.model_for(rule), dispatch_uid=rule.dispatch_uid
            )

    def _model_receiver(self, rule: Rule) -> Callable[..., None]:
        def receiver(sender: type[Model], instance: Model, **kwargs: Any) -> None:
            if kwargs.get("raw"):
                return  # fixture loading
            if rule.event != "delete" and kwargs.get("created") != (rule.event == "create"):
                return
            self.run(rule, sender, instance)

        return receiver

    def _signal_receiver(self, rule: Rule) -> Callable[..., None]:
        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            self.run(rule, sender, **kwargs)

        return receiver

    def run(self, rule: Rule, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Run one rule and send its Notice; errors are logged unless strict."""
        using = (
            router.db_for_write(sender)
            if isinstance(sender, type) and issubclass(sender, Model)
            else None
        )
        try:
            with transaction.atomic(
                using=using
            ):  # a savepoint: a failing rule never poisons the host's transaction
                notice = rule.func(*args, **kwargs) if args else rule.func(sender, **kwargs)
                if notice is None:
                    return
                if not isinstance(notice, Notice):
                    raise RegistrationError(
                        f"Rule {rule.name} returned {notice!r}; return a registry.Notice or None."
                    )
                notice.send()
        except Exception:
            if get_settings().RAISE_RULE_ERRORS:
                raise
            logger.exception("Notification rule %s failed; no Event was created.", rule.name)


#: The registry host projects register their rules with. This module's
#: functions are its methods, so ``from offchat_notify import registry`` then
#: ``@registry.on_create(...)`` registers with it.
default = NotificationRegistry()

on_create = default.on_create
on_update = default.on_update
on_delete = default.on_delete
on_signal = default.on_signal
unregister = default.unregister
get_rules = default.get_rules


def autodiscover() -> None:
    """Import ``notifications`` from every installed app. A broken module fails loudly."""
    autodiscover_modules("notifications", register_to=default)
    default.connect_all()
