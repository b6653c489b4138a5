"""django-notifications-hq 1.8 on Django 5.1 and later.

Its abstract model still declares ``Meta.index_together``, an option Django
5.1 removed, so its models fail to load with "'class Meta' got invalid
attribute(s): index_together". Accepting (and ignoring) the option is enough:
its migrations create the same index through ``AlterIndexTogether``, which
Django keeps for old migrations, and the code path the benchmarks time
(``notify.send`` saving one row per recipient) does not depend on it.

Imported by benchmarks/chat/__init__.py: ``benchmarks.chat`` comes before
``notifications`` in INSTALLED_APPS, so this runs before its models load.
"""

from __future__ import annotations

from django.db.models import options

if "index_together" not in options.DEFAULT_NAMES:
    options.DEFAULT_NAMES = (*options.DEFAULT_NAMES, "index_together")
