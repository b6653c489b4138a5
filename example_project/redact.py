"""Show a Redis URL without its password, for run.py's messages."""

from __future__ import annotations

import re

#: Query parameters whose value is a secret (redis-py takes ``?password=``).
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:password|passwd|pass|pwd|secret|token)=)[^&;#]*")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; never raises.

    ``redis://user:secret@host:6379/0`` becomes ``redis://user:***@host:6379/0``,
    ``redis://:p@ss@host`` (an unencoded ``@`` in the password) ``redis://:***@host``,
    and ``?password=secret`` ``?password=***``. A string that is not a URL but has
    an ``@`` (``secret@host``) loses everything before its last ``@``.
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    at = rest.rfind("@")
    query = rest.find("?")
    # The last "@" ends the credentials, unless it sits in a query value (?name=a@b).
    if at >= 0 and (query < 0 or query > at or "=" not in rest[query:at]):
        credentials, rest = rest[:at], rest[at + 1 :]
        user, colon, _password = credentials.partition(":")
        rest = (f"{user}:***@" if colon else "***@") + rest
    return scheme + sep + _SECRET_PARAM.sub(r"\1***", rest)
