"""The notebook panels: chat, live video, both side by side, and the workshop presenter's dashboard."""

from ivs_widgets.widgets.chat import ChatPanel
from ivs_widgets.widgets.dashboard import PresenterDashboard
from ivs_widgets.widgets.live import LiveStreamPanel
from ivs_widgets.widgets.player import PlayerPanel

__all__ = ["ChatPanel", "LiveStreamPanel", "PlayerPanel", "PresenterDashboard"]
