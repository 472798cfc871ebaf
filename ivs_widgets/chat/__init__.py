"""The client side of Amazon IVS Chat's messaging protocol, usable with or without Jupyter.

Names are imported on first use (PEP 562): the sandbox needs only ``chat.frames``, and should not
pay for the client's imports when it starts.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "BackgroundChatRoom": "background",
    **{name: "frames" for name in ("ChatErrorFrame", "ChatEvent", "ChatMessage", "DeleteMessageEvent",
                                   "DisconnectUserEvent", "Frame", "Sender")},
    **{name: "room" for name in ("NOT_CONNECTED_CODE", "TIMEOUT_CODE", "ChatConnectionError", "ChatError",
                                 "ChatRoom", "ChatToken", "ConnectionState", "DisconnectReason", "TokenProvider")},
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
