"""The client side of Amazon IVS Chat's messaging protocol, usable with or without Jupyter."""

from ivs_widgets.chat.background import BackgroundChatRoom
from ivs_widgets.chat.frames import (
    ChatErrorFrame,
    ChatEvent,
    ChatMessage,
    DeleteMessageEvent,
    DisconnectUserEvent,
    Frame,
    Sender,
)
from ivs_widgets.chat.room import (
    NOT_CONNECTED_CODE,
    TIMEOUT_CODE,
    ChatConnectionError,
    ChatError,
    ChatRoom,
    ChatToken,
    ConnectionState,
    DisconnectReason,
    TokenProvider,
)

__all__ = [
    "BackgroundChatRoom", "ChatConnectionError", "ChatError", "ChatErrorFrame", "ChatEvent", "ChatMessage",
    "ChatRoom", "ChatToken", "ConnectionState", "DeleteMessageEvent", "DisconnectReason", "DisconnectUserEvent",
    "Frame", "NOT_CONNECTED_CODE", "Sender", "TIMEOUT_CODE", "TokenProvider",
]
