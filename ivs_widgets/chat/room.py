"""One chat room connection, with the behaviour of the official JS SDK (``amazon-ivs-chat-messaging``).

The chat token is the only credential: it travels as the WebSocket subprotocol, and every new
connection needs a fresh one, so the room asks a *token provider* each time. States go
disconnected → connecting → connected. A dropped socket or an ERROR 401 (session expired) means
reconnect with a fresh token; a clean close by the server (moderator, deleted room) is final.
When the token says when it expires, a second connection is opened before then and the room
switches to it; frames are de-duplicated by ``Id`` and kept in order across that switch.

Everything runs on the event loop that called :meth:`ChatRoom.connect`. For notebooks, where the
kernel's loop stalls while a cell runs, use :class:`ivs_widgets.chat.background.BackgroundChatRoom`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl as ssl_module
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from ivs_widgets.protocol import frames
from ivs_widgets.protocol.errors import IvsWidgetsError

log = logging.getLogger("ivs_widgets.chat")
Answer = TypeVar("Answer", bound=frames.Frame)

#: ChatError codes for failures the client finds itself (no ERROR frame), with their HTTP meaning.
TIMEOUT_CODE = 408
NOT_CONNECTED_CODE = 503

#: Proactive rotation opens the next connection this long before the token expires (as the SDK does) ...
ROTATE_BEFORE_SECONDS = 60.0
#: ... or this long before, for tokens that have at most ROTATE_BEFORE_SECONDS left.
ROTATE_SHORT_TOKEN_BEFORE_SECONDS = 30.0

#: Waits between connection attempts double from this (the SDK retries at once; a short, jittered
#: backoff spares a restarting server a burst of handshakes from every client).
RETRY_BASE_DELAY_SECONDS = 0.25
RETRY_MAX_DELAY_SECONDS = 5.0

#: How many recent frame ids are remembered to drop the copies that arrive on two connections.
SEEN_IDS = 4096

#: Kinds of callback :meth:`ChatRoom.on` accepts.
LISTENER_KINDS = ("message", "event", "message_delete", "user_disconnect", "error", "state")


@dataclass(frozen=True)
class ChatToken:
    """What a token provider returns: the token and, optionally, when it and its session expire."""

    token: str = field(repr=False)  # a bearer credential: never in a printed or logged repr
    token_expiration_time: datetime | None = None
    session_expiration_time: datetime | None = None

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> ChatToken:
        """From a boto3 ``create_chat_token`` response (datetimes) or its JSON (ISO-8601 strings)."""
        return cls(response["token"], _as_datetime(response.get("tokenExpirationTime")),
                   _as_datetime(response.get("sessionExpirationTime")))


#: Called with no arguments whenever a connection needs a token; sync or async. It may also return
#: the ``create_chat_token`` response itself or a bare token string.
TokenProvider = Callable[[], ChatToken | Awaitable[ChatToken]]


class ConnectionState(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class DisconnectReason(str, Enum):
    CLIENT = "clientDisconnect"
    SERVER = "serverDisconnect"
    SOCKET_ERROR = "socketError"
    FETCH_TOKEN_ERROR = "fetchTokenError"


class ChatError(IvsWidgetsError):
    """A request failed: the service's ERROR frame (its code), or ``TIMEOUT_CODE`` when no answer came
    in time, or ``NOT_CONNECTED_CODE`` when there was no open connection to send it on or it closed."""

    code: int

    def __init__(self, code: int, message: str, request_id: str = "") -> None:
        super().__init__(message, code=code)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ChatConnectionError(IvsWidgetsError, ConnectionError):
    """:meth:`ChatRoom.connect` gave up; ``reason`` is the room's :class:`DisconnectReason`."""

    reason: DisconnectReason

    def __init__(self, reason: DisconnectReason, message: str) -> None:
        super().__init__(message, code=reason.value, reason=reason)

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"


@dataclass(eq=False)
class _Link:
    """One WebSocket connection, and the frames it holds back while an older connection still reads."""

    ws: ClientConnection
    token: ChatToken
    held: list[frames.Frame] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Pending:
    future: asyncio.Future[Any]
    link: _Link
    answer: type


class _FrameStream:
    """One ``async for`` over a room: every frame from now until the room next disconnects."""

    _END = object()

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, item: Any) -> None:
        self._queue.put_nowait(item)

    def end(self) -> None:
        self._queue.put_nowait(self._END)

    def __aiter__(self) -> _FrameStream:
        return self

    async def __anext__(self) -> frames.Frame:
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(item)  # stays finished
            raise StopAsyncIteration
        return item


class ChatRoom:
    """A connection to one chat room, kept open across drops, session expiry and token rotation."""

    def __init__(self, url: str, token_provider: TokenProvider, *, max_reconnect_attempts: int = 3,
                 request_timeout: float = 10.0, ssl: ssl_module.SSLContext | None = None) -> None:
        if ssl is not None and not parse_uri(url).secure:  # parse_uri also refuses non-WebSocket URLs
            raise ValueError("an SSL context needs a wss:// URL")
        self.url = url
        self.max_reconnect_attempts = max_reconnect_attempts
        self.request_timeout = request_timeout
        self._provider = token_provider
        self._ssl = ssl
        self._state = ConnectionState.DISCONNECTED
        self._reason: DisconnectReason | None = None
        self._listeners: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in LISTENER_KINDS}
        self._streams: weakref.WeakSet[_FrameStream] = weakref.WeakSet()
        self._links: list[_Link] = []  # every connection still reading, oldest first
        self._current: _Link | None = None  # the one requests go out on
        self._lost: asyncio.Future[bool] | None = None  # current link ended: True = reconnect, False = final
        self._pending: dict[str, _Pending] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._supervisor: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stopping = False
        self._rotation: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # rotations and closes of replaced connections
        self._callback_tasks: set[asyncio.Future[Any]] = set()

    # -- public API --------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def disconnect_reason(self) -> DisconnectReason | None:
        """Why the room last became disconnected (None before that)."""
        return self._reason

    async def connect(self) -> None:
        """Connect (or wait for the connection in progress); raises ChatConnectionError if it gives up.

        Cancelling this call while it waits stops the attempt.
        """
        if self._supervisor is None or self._supervisor.done():
            self._stopping = False
            self._ready = asyncio.get_running_loop().create_future()
            self._supervisor = asyncio.ensure_future(self._supervise(self._ready))
            self._supervisor.add_done_callback(partial(_abandon, self._ready))
        try:
            await self._ready  # type: ignore[misc]
        except asyncio.CancelledError:
            if self._state is not ConnectionState.CONNECTED and self._supervisor is not None:
                self._supervisor.cancel()
            raise

    async def disconnect(self) -> None:
        """Close every connection with 1000; the room ends ``disconnected`` with ``clientDisconnect``."""
        task = self._supervisor
        if task is None or task.done():
            return
        if not self._stopping:
            task.cancel()
        await asyncio.wait([task])

    async def send_message(self, content: str, attributes: dict[str, str] | None = None) -> frames.ChatMessage:
        """Send a message; resolves with its MESSAGE as the room delivered it (id, send time, sender)."""
        return await self._request(frames.SendMessageRequest(content, attributes), frames.ChatMessage)

    async def delete_message(self, message_id: str, reason: str | None = None) -> frames.DeleteMessageEvent:
        """Delete a message for everyone (needs the DELETE_MESSAGE capability)."""
        return await self._request(frames.DeleteMessageRequest(message_id, reason), frames.DeleteMessageEvent)

    async def disconnect_user(self, user_id: str, reason: str | None = None) -> frames.DisconnectUserEvent:
        """Close every connection of ``user_id`` in this room (needs the DISCONNECT_USER capability)."""
        return await self._request(frames.DisconnectUserRequest(user_id, reason), frames.DisconnectUserEvent)

    def on(self, kind: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call ``callback`` for each frame of ``kind``; returns a function that unsubscribes it.

        ``message``, ``event`` (application events), ``message_delete``, ``user_disconnect`` and
        ``error`` (every ERROR frame, also those that fail a request) get the frame; ``state`` gets
        ``(state, reason)`` with a DisconnectReason when disconnected, else None. Callbacks run on the
        room's loop and must not block; a coroutine function is scheduled as a task. Registering is
        safe from any thread.
        """
        if kind not in self._listeners:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(LISTENER_KINDS)}")
        self._listeners[kind].append(callback)

        def unsubscribe() -> None:
            with suppress(ValueError):
                self._listeners[kind].remove(callback)

        return unsubscribe

    def __aiter__(self) -> _FrameStream:
        """Every incoming frame in order, until the room next becomes disconnected."""
        stream = _FrameStream()
        self._streams.add(stream)
        return stream

    async def __aenter__(self) -> ChatRoom:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def __repr__(self) -> str:
        return f"<ChatRoom {self.url} {self._state.value}>"

    # -- lifecycle ---------------------------------------------------------------------------
    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        """Connect, then reconnect after every loss the SDK recovers from, until a final one."""
        reason = DisconnectReason.CLIENT
        try:
            while True:
                self._set_state(ConnectionState.CONNECTING)
                link = await self._open_with_retries()
                self._lost = asyncio.get_running_loop().create_future()
                self._switch_to(link)
                self._set_state(ConnectionState.CONNECTED)
                if not ready.done():
                    ready.set_result(None)
                if not await self._lost:
                    reason = DisconnectReason.SERVER
                    return
                self._stop_rotation()
                old, self._current = self._current, None
                if old is not None:  # after a 401 the old socket may still be open: its frames stay in order
                    self._spawn(old.ws.close())
        except ChatConnectionError as failure:
            reason = failure.reason
            if not ready.done():
                ready.set_exception(failure)
        finally:
            self._stopping = True
            await self._shut_down()
            self._set_state(ConnectionState.DISCONNECTED, reason)

    async def _shut_down(self) -> None:
        self._current = None
        self._stop_rotation()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        links = list(self._links)
        await asyncio.gather(*(link.ws.close() for link in links), return_exceptions=True)
        await asyncio.gather(*(link.reader for link in links if link.reader), return_exceptions=True)
        self._fail_pending(None, "the room disconnected before the request was answered")

    async def _open_with_retries(self) -> _Link:
        """A new connection within the retry budget (1 + max_reconnect_attempts), or ChatConnectionError."""
        failure: ChatConnectionError | None = None
        for attempt in range(1 + self.max_reconnect_attempts):
            if attempt:
                await asyncio.sleep(_backoff(attempt))
            try:
                return await self._open()
            except _TokenFailure as error:
                failure = ChatConnectionError(DisconnectReason.FETCH_TOKEN_ERROR,
                                              f"the token provider raised {error.__cause__!r}")
                failure.__cause__ = error.__cause__
            except (OSError, TimeoutError, WebSocketException, ValueError) as error:
                failure = ChatConnectionError(DisconnectReason.SOCKET_ERROR,
                                              f"could not open {self.url}: {error}")
                failure.__cause__ = error
            log.info("chat connection attempt %d failed: %s", attempt + 1, failure)
        assert failure is not None
        raise failure

    async def _open(self) -> _Link:
        token = await self._fetch_token()
        # Without an explicit context, wss:// verifies the server against the system's CAs.
        tls: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        ws = await open_websocket(self.url, subprotocols=[Subprotocol(token.token)],
                                  open_timeout=self.request_timeout, **tls)
        link = _Link(ws, token)
        self._links.append(link)
        link.reader = asyncio.ensure_future(self._read(link))
        return link

    async def _fetch_token(self) -> ChatToken:
        try:
            if _is_async(self._provider):
                result: Any = self._provider()
            else:  # a blocking provider (boto3) runs on a worker thread so frames keep flowing
                result = await asyncio.to_thread(self._provider)
            if inspect.isawaitable(result):
                result = await result
            return _as_token(result)
        except Exception as error:
            raise _TokenFailure() from error

    def _switch_to(self, link: _Link) -> None:
        self._current = link
        if link.token.token_expiration_time is not None:
            self._rotation = self._spawn(self._rotate(link))

    def _stop_rotation(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
            self._rotation = None

    async def _rotate(self, link: _Link) -> None:
        """Before ``link``'s token expires, open the next connection, switch to it, retire ``link``."""
        assert link.token.token_expiration_time is not None
        await asyncio.sleep(rotation_delay(link.token.token_expiration_time))
        try:
            successor = await self._open_with_retries()
        except ChatConnectionError as failure:  # the current connection still works until its session ends
            log.warning("could not rotate the chat connection: %s", failure)
            return
        if self._current is not link or self._lost is None or self._lost.done():
            await successor.ws.close()  # ``link`` was lost meanwhile: the reconnect takes over
            return
        self._switch_to(successor)
        waiting = [p.future for p in self._pending.values() if p.link is link]
        if waiting:  # requests sent on the old connection get their answers there
            await asyncio.wait(waiting, timeout=self.request_timeout)
        await link.ws.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- frames ------------------------------------------------------------------------------
    async def _read(self, link: _Link) -> None:
        clean = False
        try:
            while True:
                raw = await link.ws.recv()
                self._receive(link, raw)
        except ConnectionClosed as closed:
            clean = closed.rcvd is not None  # the server sent a close frame: an orderly disconnect
        except Exception:
            log.exception("chat connection reader failed")
        finally:
            self._links.remove(link)
            late, link.held = link.held, []  # only a link that never became the oldest holds frames
            for frame in late:
                self._deliver(frame)
            self._flush()
            self._fail_pending(link, "the connection closed before the request was answered")
            if link is self._current and self._lost is not None and not self._lost.done():
                self._lost.set_result(not clean)

    def _receive(self, link: _Link, raw: str | bytes) -> None:
        try:
            frame = frames.loads(raw)
        except frames.FrameError as error:  # the SDK drops such frames too
            log.warning("dropped an invalid chat frame: %s", error)
            return
        if (isinstance(frame, frames.ChatErrorFrame) and frame.error_code == 401 and link is self._current
                and self._lost is not None and not self._lost.done()):
            self._lost.set_result(True)  # session expired: reconnect with a fresh token
        if link is self._links[0]:
            self._deliver(frame)
        else:  # an older connection is still delivering: keep order by waiting for it to finish
            link.held.append(frame)

    def _flush(self) -> None:
        if self._links:
            head = self._links[0]
            held, head.held = head.held, []
            for frame in held:
                self._deliver(frame)

    def _deliver(self, frame: frames.Frame) -> None:
        if frame.id:
            if frame.id in self._seen:
                return
            self._seen[frame.id] = None
            if len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        self._notify(_kind(frame), frame)
        for stream in list(self._streams):
            stream.put(frame)
        self._settle(frame)

    def _settle(self, frame: frames.Frame) -> None:
        pending = self._pending.get(frame.request_id) if frame.request_id else None
        if pending is None or pending.future.done():
            return
        if isinstance(frame, frames.ChatErrorFrame):
            pending.future.set_exception(ChatError(frame.error_code, frame.error_message, frame.request_id))
        elif isinstance(frame, pending.answer):
            pending.future.set_result(frame)

    def _fail_pending(self, link: _Link | None, message: str) -> None:
        for request_id, pending in list(self._pending.items()):
            if (link is None or pending.link is link) and not pending.future.done():
                pending.future.set_exception(ChatError(NOT_CONNECTED_CODE, message, request_id))

    async def _request(self, request: frames.Request, answer: type[Answer]) -> Answer:
        link = self._current
        if link is None or self._state is not ConnectionState.CONNECTED:
            raise ChatError(NOT_CONNECTED_CODE, f"the chat room is {self._state.value}: connect() first")
        request_id = str(uuid.uuid4())
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(answered, link, answer)
        try:
            async with asyncio.timeout(self.request_timeout):
                await link.ws.send(frames.dumps(replace(request, request_id=request_id)))
                return await answered
        except TimeoutError:
            raise ChatError(TIMEOUT_CODE, f"no answer within {self.request_timeout} s", request_id) from None
        except ConnectionClosed:
            raise ChatError(NOT_CONNECTED_CODE, "the connection closed before the request was sent",
                            request_id) from None
        finally:
            self._pending.pop(request_id, None)

    # -- notification ------------------------------------------------------------------------
    def _set_state(self, state: ConnectionState, reason: DisconnectReason | None = None) -> None:
        if state is self._state:
            return
        self._state = state
        if state is ConnectionState.DISCONNECTED:
            self._reason = reason
        self._notify("state", state, reason)
        if state is ConnectionState.DISCONNECTED:
            for stream in list(self._streams):
                stream.end()
            self._streams.clear()

    def _notify(self, kind: str, *args: Any) -> None:
        for callback in tuple(self._listeners[kind]):
            try:
                result = callback(*args)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_done)
            except Exception:  # one broken callback must not stop the chat
                log.exception("chat %s callback %r failed", kind, callback)

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("chat callback failed", exc_info=task.exception())


class _TokenFailure(Exception):
    """The token provider raised (the original error is the ``__cause__``)."""


def _abandon(ready: asyncio.Future[None], supervisor: asyncio.Task[None]) -> None:
    """Release connect() when the room stopped (disconnect(), even before it began) without connecting."""
    if not ready.done():
        ready.set_exception(ChatConnectionError(DisconnectReason.CLIENT, "disconnected before the connection opened"))


def rotation_delay(token_expiration_time: datetime, now: datetime | None = None) -> float:
    """Seconds until the next connection should open: 60 s before expiry, 30 s for short tokens, min 0."""
    remaining = (token_expiration_time - (now or datetime.now(UTC))).total_seconds()
    if remaining > ROTATE_BEFORE_SECONDS:
        return remaining - ROTATE_BEFORE_SECONDS
    return max(remaining - ROTATE_SHORT_TOKEN_BEFORE_SECONDS, 0.0)


def _backoff(attempt: int) -> float:
    ceiling = min(RETRY_MAX_DELAY_SECONDS, RETRY_BASE_DELAY_SECONDS * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def _kind(frame: frames.Frame) -> str:
    if isinstance(frame, frames.ChatMessage):
        return "message"
    if isinstance(frame, frames.DeleteMessageEvent):
        return "message_delete"
    if isinstance(frame, frames.DisconnectUserEvent):
        return "user_disconnect"
    if isinstance(frame, frames.ChatEvent):
        return "event"
    return "error"


def _is_async(provider: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(provider) or inspect.iscoroutinefunction(type(provider).__call__)


def _as_token(value: Any) -> ChatToken:
    if isinstance(value, ChatToken):
        return value
    if isinstance(value, str):
        return ChatToken(value)
    if isinstance(value, Mapping):
        return ChatToken.from_response(value)
    raise TypeError(f"a token provider must return a ChatToken, not {type(value).__name__}")


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
