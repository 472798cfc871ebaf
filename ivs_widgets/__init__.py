"""ivs-widgets: Amazon IVS Chat in Jupyter, with a local sandbox that stands in for AWS.

The public API, importable from here::

    import ivs_widgets
    backend = ivs_widgets.connect()          # the local sandbox, or IVS_BACKEND=aws for AWS
    panel = backend.chat_panel(room_arn, "ada")

Heavy parts (the sandbox server, the widgets) are imported on first use, so ``import ivs_widgets``
stays cheap and an AWS-only user never loads the sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivs_widgets.lazy import exports
from ivs_widgets.protocol.errors import IvsWidgetsError

if TYPE_CHECKING:
    from ivs_widgets.backend import Backend, connect
    from ivs_widgets.chat import BackgroundChatRoom, ChatConnectionError, ChatError, ChatRoom, ChatToken
    from ivs_widgets.protocol.chat_logs import ChatLogError
    from ivs_widgets.protocol.frames import FrameError
    from ivs_widgets.sandbox import Sandbox
    from ivs_widgets.widgets import ChatPanel, LiveStreamPanel, PlayerPanel
    from ivs_widgets.workshop import WorkshopError

__version__ = "0.1.0"

_HOMES = {
    "connect": "ivs_widgets.backend", "Backend": "ivs_widgets.backend",
    "Sandbox": "ivs_widgets.sandbox",
    **{name: "ivs_widgets.chat" for name in ("ChatRoom", "BackgroundChatRoom", "ChatToken", "ChatError",
                                              "ChatConnectionError")},
    **{name: "ivs_widgets.widgets" for name in ("ChatPanel", "PlayerPanel", "LiveStreamPanel")},
    "FrameError": "ivs_widgets.protocol.frames", "ChatLogError": "ivs_widgets.protocol.chat_logs",
    "WorkshopError": "ivs_widgets.workshop",
}

__all__ = ["Backend", "BackgroundChatRoom", "ChatConnectionError", "ChatError", "ChatLogError", "ChatPanel",
           "ChatRoom", "ChatToken", "FrameError", "IvsWidgetsError", "LiveStreamPanel", "PlayerPanel", "Sandbox",
           "WorkshopError", "__version__", "connect"]


__getattr__, __dir__ = exports(globals(), _HOMES)
