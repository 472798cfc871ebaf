"""``LiveStreamPanel``: a live video and its chat room side by side, in one line of notebook code."""

from __future__ import annotations

from typing import Any

import ipywidgets

from ivs_widgets.chat.room import TokenProvider
from ivs_widgets.widgets.chat import ChatPanel
from ivs_widgets.widgets.player import PlayerPanel


class LiveStreamPanel(ipywidgets.HBox):
    """``LiveStreamPanel(playback_url, token_provider=..., messaging_url=...)``: player left, chat right.

    ``player`` and ``chat`` are the two panels, with their full APIs; ``chat_options`` go to ChatPanel
    (``title``, ``capabilities``, ``history_limit`` …). Pass ``chat=`` to use a ChatPanel built
    elsewhere (``Backend.live_stream_panel`` does).
    """

    def __init__(self, playback_url: str, *, token_provider: TokenProvider | None = None,
                 messaging_url: str | None = None, chat: ChatPanel | None = None, **chat_options: Any) -> None:
        if chat is None:
            if token_provider is None or messaging_url is None:
                raise TypeError("LiveStreamPanel needs chat= or both token_provider= and messaging_url=")
            chat = ChatPanel(messaging_url, token_provider, **chat_options)
        self.player = PlayerPanel(playback_url, layout=ipywidgets.Layout(flex="2 1 400px", min_width="0"))
        self.chat = chat
        self.chat.layout = ipywidgets.Layout(flex="1 1 280px", min_width="0")
        super().__init__([self.player, self.chat],
                         layout=ipywidgets.Layout(width="100%", flex_flow="row wrap", align_items="flex-start",
                                                 grid_gap="8px"))

    def end(self) -> None:
        """Leave the chat and stop the player, keeping both panels on the page in their final state."""
        self.chat.end()
        self.player.end()

    def close(self) -> None:
        """Disconnect the chat and close both panels."""
        self.chat.close()
        self.player.close()
        super().close()

    def __repr__(self) -> str:
        return f"LiveStreamPanel({self.player!r}, {self.chat!r})"
