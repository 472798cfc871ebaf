"""The notebook panels: chat, live video, both side by side, the workshop presenter's dashboard, and the
seed's browser-side chat page."""

from ivs_widgets.widgets.chat import ChatPanel
from ivs_widgets.widgets.dashboard import PresenterDashboard
from ivs_widgets.widgets.live import LiveStreamPanel
from ivs_widgets.widgets.player import PlayerPanel
from ivs_widgets.widgets.seed_demo import SeedChatDemo

__all__ = ["ChatPanel", "LiveStreamPanel", "PlayerPanel", "PresenterDashboard", "SeedChatDemo"]
