"""``ChatPanel``: an IVS Chat room in a notebook cell (JupyterLab 4, Notebook 7, Voila).

The connection is a :class:`BackgroundChatRoom`, on its own thread and loop, so messages keep
arriving while another cell is busy. Frames update a capped history in Python at once; the browser
gets it in batches, at most every ``FLUSH_INTERVAL_SECONDS``, as one synced trait (see ``_flush``).

The view's actions (send, delete, disconnect a user, reconnect) travel as custom widget messages.
A kernel reads those only when it is idle: while a cell runs, what the viewer types waits for the
cell to finish. Receiving does not wait.

``end()`` is how a notebook finishes with a panel: the connection and its thread stop, and the
widget stays on the page with its messages, marked "chat ended" (``close()`` would remove it).
``transcript()`` gives the same conversation as text and escaped HTML, for readers without a kernel.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ivs_widgets.chat.background import BackgroundChatRoom
from ivs_widgets.chat.room import (
    NOT_CONNECTED_CODE,
    TIMEOUT_CODE,
    ChatConnectionError,
    ChatError,
    ConnectionState,
    DisconnectReason,
    TokenProvider,
)
from ivs_widgets.protocol import frames, rules
from ivs_widgets.protocol.facts import DEFAULT_MAXIMUM_MESSAGE_LENGTH

log = logging.getLogger("ivs_widgets.widgets.chat")

HERE = Path(__file__).parent
DEFAULT_HISTORY_LIMIT = 300
#: The browser gets at most one update per interval, however fast frames arrive.
FLUSH_INTERVAL_SECONDS = 0.1

SESSION_EXPIRED = "session expired — reconnecting"
#: An ERROR frame's code in words a chat user understands (400 depends on the request: see _words).
ERROR_WORDS = {
    403: "not allowed",
    404: "room not found",
    406: "denied by moderation",
    413: "too large",
    429: "rate limited",
    500: "server error",
    TIMEOUT_CODE: "no answer from the chat server",
    NOT_CONNECTED_CODE: "not connected",
}
DISCONNECT_WORDS = {
    DisconnectReason.CLIENT: "disconnected",
    DisconnectReason.SERVER: "disconnected by the server",
    DisconnectReason.SOCKET_ERROR: "disconnected: could not reach the chat server",
    DisconnectReason.FETCH_TOKEN_ERROR: "disconnected: could not get a chat token",
}
KICKED = "disconnected by a moderator"
#: ``connection_state`` once ``end()`` ran: not a connection state the view can act on (no Reconnect).
ENDED = "ended"
ENDED_STATUS = "chat ended"

Callback = Callable[[Any], Any]


class ChatPanel(anywidget.AnyWidget):
    """``ChatPanel(messaging_url, token_provider)`` shows a live chat room and lets the viewer take part.

    ``capabilities`` are those of the tokens the provider mints (the token itself is opaque to
    clients): DELETE_MESSAGE and DISCONNECT_USER add moderator buttons; without SEND_MESSAGE the
    panel is read-only. ``None`` means unknown: sending is offered, moderation is not. Other keyword
    arguments go to :class:`BackgroundChatRoom` (``timeout``, ``max_reconnect_attempts``, ``ssl`` …).
    """

    _esm = HERE / "chat.js"
    _css = HERE / "chat.css"

    title = traitlets.Unicode("IVS Chat").tag(sync=True)
    #: The newest ``history_limit`` messages and events, oldest first, as the view renders them.
    history: traitlets.List[dict[str, Any]] = traitlets.List(read_only=True).tag(sync=True)
    connection_state = traitlets.Unicode(ConnectionState.DISCONNECTED.value, read_only=True).tag(sync=True)
    #: The connection in words, e.g. "session expired — reconnecting".
    status = traitlets.Unicode("", read_only=True).tag(sync=True)
    #: The last error in words ("" once a later action succeeds).
    error = traitlets.Unicode("", read_only=True).tag(sync=True)
    max_length = traitlets.Int(DEFAULT_MAXIMUM_MESSAGE_LENGTH, min=1).tag(sync=True)
    can_send = traitlets.Bool(True, read_only=True).tag(sync=True)
    can_delete = traitlets.Bool(False, read_only=True).tag(sync=True)
    can_disconnect = traitlets.Bool(False, read_only=True).tag(sync=True)

    def __init__(self, messaging_url: str, token_provider: TokenProvider, *, title: str = "IVS Chat",
                 history_limit: int = DEFAULT_HISTORY_LIMIT, max_length: int = DEFAULT_MAXIMUM_MESSAGE_LENGTH,
                 capabilities: Iterable[str] | None = None, **room_options: Any) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        caps = None if capabilities is None else frozenset(capabilities)
        # Set before the widget opens its comm, so the first state the browser gets is complete.
        self.set_trait("can_send", caps is None or "SEND_MESSAGE" in caps)
        self.set_trait("can_delete", caps is not None and "DELETE_MESSAGE" in caps)
        self.set_trait("can_disconnect", caps is not None and "DISCONNECT_USER" in caps)
        super().__init__(title=title, max_length=max_length)
        self.messaging_url = messaging_url
        self.history_limit = history_limit
        self._lock = threading.RLock()  # re-entrant: wait_for conditions read messages under it
        self._changed = threading.Condition(self._lock)  # notified whenever a frame has been handled
        self._entries: OrderedDict[str, tuple[frames.Frame, dict[str, Any]]] = OrderedDict()
        self._outbox: dict[str, Any] = {}  # trait values waiting for the next flush
        self._flush_scheduled = False
        self._last_flush = 0.0
        self._callbacks: dict[str, list[Callback]] = {"message": [], "event": [], "error": []}
        self._user_id: str | None = None  # learned from the echo of our own first message
        self._kicked = False
        self._expired = False
        self._closed = False  # the chat thread has stopped (end() or close())
        self._typing = 0  # messages typed in the view and not yet answered by the room
        self._typed: set[str] = set()  # ids of the messages the viewer typed (not sent with send())
        self._room = BackgroundChatRoom(messaging_url, token_provider, **room_options)
        for kind, handler in (("message", self._on_message), ("event", self._on_event),
                              ("message_delete", self._on_delete), ("user_disconnect", self._on_user_disconnect),
                              ("error", self._on_error_frame), ("state", self._on_state)):
            self._room.on(kind, handler)
        self.on_msg(self._on_view_message)
        try:
            self.connect()
        except (ChatConnectionError, TimeoutError) as failure:  # shown in the panel; the viewer can retry
            log.warning("chat panel could not connect: %s", failure)

    # -- Python API ----------------------------------------------------------------------------
    @property
    def messages(self) -> list[frames.ChatMessage]:
        """The messages in the history, oldest first (deleted ones are gone)."""
        with self._lock:
            return [frame for frame, _ in self._entries.values() if isinstance(frame, frames.ChatMessage)]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per message, for ``pandas.DataFrame(panel.to_records())``."""
        return [{"id": m.id, "time": m.sent_at, "user_id": m.sender.user_id, "display_name": _display_name(m),
                 "content": m.content, "attributes": dict(m.attributes or {})} for m in self.messages]

    def connect(self) -> None:
        """Connect (again, e.g. after a moderator's disconnect); raises ChatConnectionError or TimeoutError."""
        self._kicked = False
        try:
            self._room.connect()
        except (ChatConnectionError, TimeoutError) as failure:
            self._update(error=f"Could not connect: {failure or 'no answer in time'}")
            raise

    def disconnect(self) -> None:
        """Leave the room; the panel stays, with its history, and can ``connect()`` again."""
        self._room.disconnect()

    def send(self, text: str, attributes: dict[str, str] | None = None) -> frames.ChatMessage:
        """Send a message; returns it as the room delivered it. Failures raise ChatError and show in words."""
        self._check_not_ended()
        try:
            message = self._room.send_message(text, attributes)
        except ChatError as error:
            self._failed("Message not sent", error, text)
            raise
        self._sent(message)
        return message

    def delete(self, message_id: str, reason: str | None = None) -> None:
        """Delete a message for everyone (needs DELETE_MESSAGE)."""
        try:
            self._room.delete_message(message_id, reason)
        except ChatError as error:
            self._failed("Could not delete the message", error)
            raise

    def disconnect_user(self, user_id: str, reason: str | None = None) -> None:
        """Disconnect every connection of ``user_id`` from the room (needs DISCONNECT_USER)."""
        try:
            self._room.disconnect_user(user_id, reason)
        except ChatError as error:
            self._failed(f"Could not disconnect {user_id}", error)
            raise

    def on_message(self, callback: Callable[[frames.ChatMessage], Any]) -> Callable[[], None]:
        """Call ``callback(message)`` for every new message, on the chat thread; returns an unsubscriber."""
        return self._subscribe("message", callback)

    def on_event(self, callback: Callable[[frames.ChatEvent], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every application event (not the ``aws:`` system events)."""
        return self._subscribe("event", callback)

    def on_error(self, callback: Callable[[ChatError], Any]) -> Callable[[], None]:
        """Call ``callback(error)`` for every failed action and every error the server reports."""
        return self._subscribe("error", callback)

    def prefill(self, messages: Iterable[frames.ChatMessage]) -> None:
        """Show earlier messages to a late joiner, oldest first, before the live ones.

        IVS Chat has no history API: the earlier messages come from the chat logs, e.g.
        ``ChatHistory.last_messages(50)``. Callbacks are not called for them.
        """
        for message in messages:
            with self._lock:
                if message.id in self._entries:
                    continue
            self._add(message, _message_row(message))
        with self._lock:  # earlier messages belong before anything already shown
            ordered = sorted(self._entries.items(), key=lambda item: getattr(item[1][0], "send_time", ""))
            self._entries = OrderedDict(ordered)

    def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0, *, hint: str = "") -> None:
        """Block until ``condition()`` is true, re-checking each time the panel handles a frame.

        Frames arrive on the chat thread, so code that sends and then reads ``messages`` at once
        (a script, "Run All") would race it; this waits for the effect instead. TimeoutError if
        it does not come; ``hint`` (what to do about it) ends its message.
        """
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise TimeoutError(f"the chat panel did not get there within {timeout:g} s"
                                   + (f": {hint}" if hint else ""))

    def wait_for_message(self, match: str | Callable[[frames.ChatMessage], Any], timeout: float = 10.0, *,
                         hint: str = "") -> frames.ChatMessage:
        """Block until the panel shows a message that matches, and return it (the newest that does).

        ``match`` is a message id (of the echo ``send_message`` returned, say) or a function of a
        message. Waiting for *the* message a cell needs, rather than for a number of messages, keeps
        the cell right whatever else arrived meanwhile: something typed in the panel, a cell run twice.
        """
        matches = (lambda message: message.id == match) if isinstance(match, str) else match
        found: list[frames.ChatMessage] = []

        def shown() -> bool:
            found[:] = [message for message in self.messages if matches(message)][-1:]
            return bool(found)

        self.wait_for(shown, timeout, hint=hint or "that message never arrived")
        return found[0]

    def typed_messages(self, timeout: float = 10.0) -> list[frames.ChatMessage]:
        """The messages the viewer typed into this panel (not those of ``send()``), oldest first.

        What the viewer types reaches Python only while no cell runs (see the module's notes); a
        message already on its way to the room is waited for, up to ``timeout`` seconds.
        """
        self.wait_for(lambda: self._typing == 0, timeout, hint="the room did not answer a message typed in the panel")
        with self._lock:
            return [frame for frame, _ in self._entries.values()
                    if isinstance(frame, frames.ChatMessage) and frame.id in self._typed]

    def transcript(self) -> ChatTranscript:
        """The conversation as the panel shows it now, as text (and escaped HTML in a notebook)."""
        with self._lock:
            rows = tuple(row for _, row in self._entries.values())
        return ChatTranscript(self.title, self._status_words(), rows)

    def end(self) -> None:
        """Leave the room and stop the chat thread, but keep the widget: the panel stays on the page with
        its messages, marked "chat ended", for whoever reads the notebook later. Safe to call twice;
        ``close()`` afterwards still removes the widget."""
        room = getattr(self, "_room", None)
        if room is None or self._closed:
            return
        room.close()
        with self._lock:
            self._outbox.update(connection_state=ENDED, status=ENDED_STATUS, history=None)
        self._flush()  # on this thread: the chat loop has stopped
        self._closed = True

    def close(self) -> None:
        """Disconnect, stop the chat thread and close the widget; safe to call twice."""
        room = getattr(self, "_room", None)
        if room is not None and not self._closed:
            room.close()
            self._flush()  # the final state, on this thread: the chat loop has stopped
            self._closed = True
        super().close()

    def __repr__(self) -> str:
        count = len(self.messages)
        state = ENDED if self.connection_state == ENDED else self._room.state.value
        return (f"ChatPanel({self.title!r} at {self.messaging_url}, {state}, "
                f"{count} message{'' if count == 1 else 's'})")

    # -- frames (these run on the chat thread) -------------------------------------------------
    def _on_message(self, message: frames.ChatMessage) -> None:
        self._add(message, _message_row(message))
        self._emit("message", message)

    def _on_event(self, event: frames.ChatEvent) -> None:
        self._add(event, {"kind": "event", "event": event.event_name, "attrs": dict(event.attributes or {})})
        self._emit("event", event)

    def _on_delete(self, event: frames.DeleteMessageEvent) -> None:
        with self._lock:
            removed = self._entries.pop(event.message_id, None)
        if removed is not None:
            self._update(history=None)

    def _on_user_disconnect(self, event: frames.DisconnectUserEvent) -> None:
        if event.user_id and event.user_id == self._user_id:
            self._kicked = True
        text = f"{event.user_id} was disconnected by a moderator" + (f": {event.reason}" if event.reason else "")
        self._add(event, {"kind": "notice", "text": text})

    def _on_error_frame(self, frame: frames.ChatErrorFrame) -> None:
        # Errors answering our own requests reach their caller as ChatError (see _failed), where the
        # request is known; only the unsolicited ones (session expiry) are handled here.
        if frame.request_id:
            return
        error = ChatError(frame.error_code, frame.error_message)
        if frame.error_code == 401:  # the room reconnects by itself: a line in the chat, not an error
            self._expired = True
            self._add(frame, {"kind": "notice", "text": SESSION_EXPIRED})
            self._emit("error", error)
        else:
            self._report(error, ERROR_WORDS.get(frame.error_code, f"server error {frame.error_code}"))

    def _on_state(self, state: ConnectionState, reason: DisconnectReason | None) -> None:
        changes: dict[str, Any] = {"connection_state": state.value}
        if state is ConnectionState.CONNECTING:
            changes["status"] = SESSION_EXPIRED if self._expired else "connecting…"
        elif state is ConnectionState.CONNECTED:
            changes["status"] = "connected"
            self._expired = False
        elif self._kicked and reason is DisconnectReason.SERVER:
            changes["status"] = KICKED
        else:
            changes["status"] = DISCONNECT_WORDS[reason] if reason else "disconnected"
        self._update(**changes)

    # -- the view's actions (custom messages; run on the kernel's thread when it is idle) -----
    def _on_view_message(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        if not isinstance(content, dict) or self._closed:  # ended or closed: the chat thread has stopped
            return
        action = content.get("action")
        if action == "send" and isinstance(content.get("content"), str):
            with self._lock:
                self._typing += 1
            self._in_background(self._send_from_view(content["content"]))
        elif action == "delete" and isinstance(content.get("id"), str):
            self._in_background(self._act(self._room.room.delete_message(content["id"]),
                                          "Could not delete the message"))
        elif action == "disconnect" and isinstance(content.get("user_id"), str):
            self._in_background(self._act(self._room.room.disconnect_user(content["user_id"]),
                                          f"Could not disconnect {content['user_id']}"))
        elif action == "connect":
            self._kicked = False
            self._in_background(self._act(self._room.room.connect(), "Could not connect"))

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run an action on the chat loop without blocking the kernel."""
        if self._closed:
            coroutine.close()
            return
        asyncio.run_coroutine_threadsafe(coroutine, self._room.loop)

    async def _send_from_view(self, text: str) -> None:
        try:
            message = await self._room.room.send_message(text)
        except ChatError as error:
            self._failed("Message not sent", error, text)
        else:
            with self._lock:
                self._typed.add(message.id)
            self._sent(message)
        finally:
            with self._changed:
                self._typing -= 1
                self._changed.notify_all()

    async def _act(self, action: Coroutine[Any, Any, Any], failure: str) -> None:
        try:
            await action
        except ChatError as error:
            self._failed(failure, error)
        except ChatConnectionError as error:
            self._update(error=f"{failure}: {error}")

    # -- bookkeeping -----------------------------------------------------------------------------
    def _check_not_ended(self) -> None:
        if self.connection_state == ENDED:
            raise RuntimeError("this chat panel has ended (its notebook's clean-up cell ran end()): "
                               "run the notebook again from its first cell to chat")

    def _status_words(self) -> str:
        return self.status or self.connection_state

    def _sent(self, message: frames.ChatMessage) -> None:
        self._user_id = message.sender.user_id
        self._update(error="")

    def _failed(self, what: str, error: ChatError, content: str | None = None) -> None:
        self._report(error, f"{what}: {self._words(error, content)}")

    def _words(self, error: ChatError, content: str | None) -> str:
        if error.code == 400:
            # The service answers 400 to any malformed request; the room's own rule tells whether a
            # message the user typed was simply longer than the room allows.
            if content and rules.content_problem(content, self.max_length):
                return "too long"
            return f"invalid request ({error.message})"
        return ERROR_WORDS.get(error.code, error.message)

    def _report(self, error: ChatError, words: str) -> None:
        self._update(error=words)
        self._emit("error", error)

    def _add(self, frame: frames.Frame, row: dict[str, Any]) -> None:
        sent = _now() if isinstance(frame, frames.ChatErrorFrame) else frame.send_time
        row = {"id": frame.id, "time": sent, **row}
        with self._lock:
            self._entries[frame.id] = (frame, row)
            while len(self._entries) > self.history_limit:
                self._entries.popitem(last=False)
        self._update(history=None)

    def _subscribe(self, kind: str, callback: Callback) -> Callable[[], None]:
        self._callbacks[kind].append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks[kind]:
                self._callbacks[kind].remove(callback)

        return unsubscribe

    def _emit(self, kind: str, item: Any) -> None:
        for callback in tuple(self._callbacks[kind]):
            try:
                callback(item)
            except Exception:  # a broken user callback must not stop the chat
                log.exception("ChatPanel %s callback %r failed", kind, callback)
        with self._changed:
            self._changed.notify_all()

    # -- batching to the browser -----------------------------------------------------------------
    def _update(self, **traits: Any) -> None:
        """Queue trait values (``history=None`` means "the history changed") for the next flush."""
        with self._lock:
            self._outbox.update(traits)
            self._changed.notify_all()
            if self._flush_scheduled or self._closed:
                return
            self._flush_scheduled = True
        self._room.loop.call_soon_threadsafe(self._schedule_flush)

    def _schedule_flush(self) -> None:
        delay = self._last_flush + FLUSH_INTERVAL_SECONDS - time.monotonic()
        self._room.loop.call_later(max(0.0, delay), self._flush)

    def _flush(self) -> None:
        # One comm message per flush carries every trait that changed. The history goes whole
        # (at most history_limit rows) rather than as a diff: it is then the single source of truth
        # for every view, including ones rendered later, after a page reload, or by Voila, and the
        # cost per flush is bounded by the cap whatever the incoming rate. The view diffs by id.
        with self._lock:
            self._flush_scheduled = False
            self._last_flush = time.monotonic()
            changes, self._outbox = self._outbox, {}
            if "history" in changes:
                changes["history"] = [row for _, row in self._entries.values()]
        if not changes:
            return
        with self.hold_sync():
            for name, value in changes.items():
                self.set_trait(name, value)
        with self._changed:  # traits such as ``error`` are visible to Python from here on
            self._changed.notify_all()


@dataclass(frozen=True)
class ChatTranscript:
    """A chat panel's conversation as text: what a printout, an HTML export or GitHub shows of the panel.

    Times are the service's send times in UTC (the panel itself shows them in the viewer's time zone).
    """

    title: str
    status: str
    rows: tuple[dict[str, Any], ...]

    @property
    def heading(self) -> str:
        count = sum(1 for row in self.rows if row["kind"] == "message")
        return f"Chat {self.title!r} ({self.status}): {count} message{'' if count == 1 else 's'}, times in UTC"

    def lines(self) -> list[str]:
        """One line per row: ``HH:MM:SS  name: text``, events and notices marked as such."""
        return [f"{_utc_clock(row['time'])}  {_row_text(row)}" for row in self.rows]

    def __str__(self) -> str:
        return "\n".join([self.heading, *self.lines()])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(_utc_clock(row['time']))}</td><td>{html.escape(_row_who(row))}</td>"
            f"<td>{html.escape(_row_what(row))}</td></tr>" for row in self.rows)
        return (f'<div class="ivs-chat-transcript"><p><b>{html.escape(self.heading)}</b></p>'
                f"<table>{cells}</table></div>")


def _utc_clock(time_text: str) -> str:
    found = re.search(r"T(\d{2}:\d{2}:\d{2})", str(time_text))
    return found.group(1) if found else str(time_text)


def _row_who(row: dict[str, Any]) -> str:
    return {"message": row.get("name", ""), "event": "event"}.get(row["kind"], "notice")


def _row_what(row: dict[str, Any]) -> str:
    if row["kind"] == "event":
        return " ".join([row["event"], *(f"{key}={value}" for key, value in row.get("attrs", {}).items())])
    return str(row.get("text", ""))


def _row_text(row: dict[str, Any]) -> str:
    return f"{_row_who(row)}: {_row_what(row)}" if row["kind"] == "message" else f"[{_row_who(row)}] {_row_what(row)}"


def _message_row(message: frames.ChatMessage) -> dict[str, Any]:
    return {"kind": "message", "user": message.sender.user_id, "name": _display_name(message),
            "text": message.content}


def _display_name(message: frames.ChatMessage) -> str:
    return message.sender.attributes.get("displayName") or message.sender.user_id


def _now() -> str:
    """ERROR frames carry no time; their notice rows get the time they arrived."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
