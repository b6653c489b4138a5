"""Sphinx configuration for offchat-notify.

Build with warnings as errors, nitpicky::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
# The repository root makes ``docs.settings`` importable; ``src`` makes autodoc
# read the working tree rather than whatever copy is installed.
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ["DJANGO_SETTINGS_MODULE"] = "docs.settings"
django.setup()

from offchat_notify import __version__  # noqa: E402

# -- Project ---------------------------------------------------------------

project = "offchat-notify"
author = "The offchat-notify developers"
copyright = "The offchat-notify developers"
version = release = __version__

# -- General ---------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    # Markdown, for changelog.rst, which includes CHANGELOG.md (written once, there).
    "myst_parser",
]
# performance/performance.md is the benchmark report that benchmarks/run_all.py
# writes (performance.rst shows its figures), not a page of its own.
exclude_patterns = ["_build", "performance/*.md"]
nitpicky = True

# -- MyST (Markdown) ---------------------------------------------------------

# GitHub's anchors for the changelog's headings, so that a link such as
# [0.1.0](#010) resolves on GitHub and here alike.
myst_heading_anchors = 3

# -- autodoc / napoleon ----------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Without intersphinx (the docs build offline) the Django and standard-library
# classes named in our signatures cannot resolve. Ignore exactly those.
nitpick_ignore = [
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "datetime.timedelta"),
    ("py:class", "django.core.checks.messages.CheckMessage"),
    ("py:class", "django.db.models.base.Model"),
    ("py:class", "django.db.models.query_utils.Q"),
    ("py:class", "django.dispatch.dispatcher.Signal"),
    ("py:class", "django.http.request.HttpRequest"),
    ("py:class", "django.http.response.HttpResponse"),
    ("py:class", "django.http.response.JsonResponse"),
]

# Private type variables and aliases in signatures (``registry._R``): not
# documented, on purpose.
nitpick_ignore_regex = [("py:class", r"offchat_notify(\.\w+)*\._\w+")]

# -- HTML ------------------------------------------------------------------

html_theme = "furo"
html_title = f"offchat-notify {release}"
