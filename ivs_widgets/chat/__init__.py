"""The client side of Amazon IVS Chat's messaging protocol, usable with or without Jupyter.

:class:`ChatRoom` is one connection with the official JS SDK's behaviour (token provider, states,
reconnect, rotation, request/echo matching); :class:`BackgroundChatRoom` runs one on its own thread
for notebook cells. Frames are :mod:`ivs_widgets.protocol.frames`, shared with the sandbox.
"""

from ivs_widgets.chat.background import BackgroundChatRoom
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
from ivs_widgets.protocol.frames import (
                                   ChatErrorFrame,
                                   ChatEvent,
                                   ChatMessage,
                                   DeleteMessageEvent,
                                   DisconnectUserEvent,
                                   Frame,
                                   Sender,
)

__all__ = ["NOT_CONNECTED_CODE", "TIMEOUT_CODE", "BackgroundChatRoom", "ChatConnectionError", "ChatError",
           "ChatErrorFrame", "ChatEvent", "ChatMessage", "ChatRoom", "ChatToken", "ConnectionState",
           "DeleteMessageEvent", "DisconnectReason", "DisconnectUserEvent", "Frame", "Sender", "TokenProvider"]
