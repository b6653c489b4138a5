"""Template tags: ``{% load offchat_notify %}``."""
