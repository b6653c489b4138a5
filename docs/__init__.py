"""The Sphinx documentation of offchat-notify (a package so ``docs.settings`` imports)."""
