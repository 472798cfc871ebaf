"""The notebook panels: chat, live video, and both side by side."""

from ivs_widgets.widgets.chat import ChatPanel
from ivs_widgets.widgets.live import LiveStreamPanel
from ivs_widgets.widgets.player import PlayerPanel

__all__ = ["ChatPanel", "LiveStreamPanel", "PlayerPanel"]
