"""A blocking facade over ChatRoom for notebook cells and widgets.

A kernel runs its asyncio loop only between cells (and while a cell awaits): a chat connection on
that loop stops receiving whenever a cell is busy. ``BackgroundChatRoom`` runs a ChatRoom on its
own daemon thread and event loop instead, so frames keep arriving, and offers blocking methods
that wait on that thread with a timeout. They never touch the caller's loop, so they work with or
without a running loop and with or without ``nest_asyncio``.

Callbacks registered with :meth:`BackgroundChatRoom.on` run **on the background thread**: keep them
short, and update widgets through their synced traits (not ``Output`` widgets).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ivs_widgets.chat.room import ChatRoom, ConnectionState, DisconnectReason, TokenProvider
from ivs_widgets.loop_thread import LoopThread
from ivs_widgets.protocol import frames

T = TypeVar("T")


class BackgroundChatRoom:
    """A ChatRoom on its own thread; every method blocks for at most ``timeout`` seconds."""

    def __init__(self, url: str, token_provider: TokenProvider, *, timeout: float = 30.0,
                 max_reconnect_attempts: int = 3, request_timeout: float = 10.0,
                 ssl: ssl_module.SSLContext | None = None) -> None:
        self.timeout = timeout
        #: The underlying room; use its coroutines only on its own loop (``self.loop``), e.g. in callbacks.
        self.room = ChatRoom(url, token_provider, max_reconnect_attempts=max_reconnect_attempts,
                             request_timeout=request_timeout, ssl=ssl)
        self._thread = LoopThread("ivs-chat-room").start()
        assert self._thread.loop is not None
        self.loop: asyncio.AbstractEventLoop = self._thread.loop

    @property
    def state(self) -> ConnectionState:
        return self.room.state

    @property
    def disconnect_reason(self) -> DisconnectReason | None:
        return self.room.disconnect_reason

    def connect(self, timeout: float | None = None) -> None:
        """Connect; raises ChatConnectionError if the room gives up, TimeoutError (and stops trying) on timeout."""
        self._wait(self.room.connect(), timeout)

    def disconnect(self, timeout: float | None = None) -> None:
        self._wait(self.room.disconnect(), timeout)

    def send_message(self, content: str, attributes: dict[str, str] | None = None,
                     timeout: float | None = None) -> frames.ChatMessage:
        return self._wait(self.room.send_message(content, attributes), timeout)

    def delete_message(self, message_id: str, reason: str | None = None,
                       timeout: float | None = None) -> frames.DeleteMessageEvent:
        return self._wait(self.room.delete_message(message_id, reason), timeout)

    def disconnect_user(self, user_id: str, reason: str | None = None,
                        timeout: float | None = None) -> frames.DisconnectUserEvent:
        return self._wait(self.room.disconnect_user(user_id, reason), timeout)

    def on(self, kind: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """ChatRoom.on; the callback runs on the background thread. Returns an unsubscribe function."""
        return self.room.on(kind, callback)

    def close(self, timeout: float | None = None) -> None:
        """Disconnect and stop the background thread; safe to call twice."""
        if not self._thread.running:
            return
        try:
            self.disconnect(timeout)
        finally:
            self._thread.stop(self.timeout if timeout is None else timeout)

    def __enter__(self) -> BackgroundChatRoom:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BackgroundChatRoom {self.room.url} {self.state.value}>"

    def _wait(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coroutine`` on the background loop and block until it finishes or times out."""
        if self._thread.in_thread():
            coroutine.close()
            raise RuntimeError("a blocking BackgroundChatRoom call from its own thread (a callback) would "
                               "deadlock; schedule the room's coroutine on self.loop instead")
        if not self._thread.running:
            coroutine.close()
            raise RuntimeError("this BackgroundChatRoom is closed")
        return self._thread.run(coroutine, self.timeout if timeout is None else timeout)
