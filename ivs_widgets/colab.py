"""Colab renders only its built-in widgets until its custom widget manager is on."""

from __future__ import annotations

import importlib
import sys


def enable_custom_widgets() -> None:
    """On Colab, turn on the custom widget manager the panels need; anywhere else, do nothing.

    anywidget turns it on too, but only once a panel is made: a container shown before that (the
    workshop's ``JoinForm``, which holds a panel only after Join) would already be rendered without
    it, and could not show the panel later.
    """
    if "google.colab" in sys.modules:
        importlib.import_module("google.colab.output").enable_custom_widget_manager()
