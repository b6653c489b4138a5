"""Role resolvers: turn a role name into a filter on the user model.

A resolver is chosen by ``OFFCHAT_NOTIFY["ROLE_RESOLVER"]`` (a dotted path)
and built with ``OFFCHAT_NOTIFY["ROLE_RESOLVER_OPTIONS"]`` as keyword
arguments. Resolvers never load users: they return a ``Q`` that the worker
applies, page by page, to the user table.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from offchat_notify.conf import get_settings, settings_cache
from offchat_notify.exceptions import NotifyConfigurationError

from .base import BaseRoles, ListedRoles, Page, Window
from .fields import FieldRoles, FlagRoles
from .groups import GroupRoles

__all__ = [
    "BaseRoles",
    "FieldRoles",
    "FlagRoles",
    "GroupRoles",
    "ListedRoles",
    "Page",
    "Window",
    "get_role_resolver",
    "load_role_resolver",
]


def load_role_resolver(path: str, options: dict[str, Any]) -> BaseRoles:
    try:
        cls = import_string(path)
    except ImportError as e:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER']: could not import {path!r}: {e}"
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, BaseRoles)):
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER']: {path!r} is not a subclass of "
            "offchat_notify.roles.BaseRoles."
        )
    try:
        return cls(**options)
    except TypeError as e:
        raise NotifyConfigurationError(
            f"OFFCHAT_NOTIFY['ROLE_RESOLVER_OPTIONS']: {path} rejected the options: {e}"
        ) from e


@settings_cache
def get_role_resolver() -> BaseRoles:
    """The configured resolver, built once per process (reset when settings change)."""
    conf = get_settings()
    return load_role_resolver(conf.ROLE_RESOLVER, conf.ROLE_RESOLVER_OPTIONS)
