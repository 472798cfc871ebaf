"""The messaging service: rooms of live connections, and what a request or an API call does in them.

Requests are checked against the token's capabilities and the room's current limits; MESSAGE and
EVENT frames go to every connection in the room, ERROR frames only to the requester. The WebSocket
glue (handshake, reading frames) is :mod:`.endpoint`; this model never sees a socket being opened.
Nothing a client sends can crash the server or affect anyone else's connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection

from ivs_widgets.protocol import formats, frames, rules
from ivs_widgets.protocol.facts import MAX_ATTRIBUTES_BYTES
from ivs_widgets.sandbox.core import tokens, validation
from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.quotas import RateQuotas
from ivs_widgets.sandbox.core.ratelimit import RateWindow
from ivs_widgets.sandbox.core.state import ROOM, State
from ivs_widgets.sandbox.messaging.activity import Activity
from ivs_widgets.sandbox.messaging.fanout import Delivery, make_fanout
from ivs_widgets.sandbox.messaging.review import ReviewHandler, ReviewHandlers

log = logging.getLogger("ivs_widgets.sandbox.messaging")

#: Largest WebSocket frame read as a request; bigger ones get ERROR 413 and the connection stays.
MAX_FRAME_BYTES = 64 * 1024

__all__ = ["MAX_FRAME_BYTES", "MessagingService", "ReviewHandler"]

Listener = Callable[[str, frames.Frame], None]


def claims_of(connection: ServerConnection) -> tokens.TokenClaims:
    """The token claims the endpoint attached to a connection at its handshake."""
    return connection.claims  # type: ignore[attr-defined, no-any-return]


class MessagingService:
    """Rooms of live connections. Private methods run on the sandbox's event loop; the public ones
    (the control plane's ``LiveChat``, the workshop's ``LiveRooms``) may be called from any thread
    and move their socket work onto that loop."""

    def __init__(self, state: State, config: SandboxConfig, quotas: RateQuotas | None = None) -> None:
        self.state = state
        self.config = config
        self.quotas = quotas or RateQuotas(config)
        self.review = ReviewHandlers()
        #: Message rates and recent denials per room, for the presenter's dashboard.
        self.activity = Activity()
        #: Called with (room ARN, frame) for every MESSAGE and EVENT delivered (chat logging, dashboards).
        self.listeners: list[Listener] = [self.activity]
        self.fanout: Delivery = make_fanout()
        self._rooms: dict[str, set[ServerConnection]] = {}
        self._rates: dict[str, RateWindow] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Chat connections open across every room (the account quota and the descriptor limit count them).
        self.connection_count = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the endpoint serves on; socket work from other threads is moved onto it."""
        self._loop = loop

    def _on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` now when on the service's loop (or before it serves), else soon on that loop."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            callback(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    def register_lambda(self, arn: str, handler: ReviewHandler) -> None:
        self.review.register(arn, handler)

    def connections(self, room_arn: str) -> list[ServerConnection]:
        return list(self._rooms.get(room_arn, ()))

    def all_connections(self) -> list[ServerConnection]:
        return [connection for room in self._rooms.values() for connection in room]

    # -- membership (the endpoint calls these) ----------------------------------------------------
    def join(self, connection: ServerConnection) -> None:
        self._rooms.setdefault(claims_of(connection).room_arn, set()).add(connection)
        self.connection_count += 1

    def leave(self, connection: ServerConnection) -> None:
        room_arn = claims_of(connection).room_arn
        room = self._rooms.get(room_arn)
        if room is not None and connection in room:
            room.discard(connection)
            self.connection_count -= 1
            if not room:
                self._rooms.pop(room_arn, None)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` as a task the service owns: kept until done, cancelled by :meth:`cancel_tasks`."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- requests --------------------------------------------------------------------------------
    async def handle(self, connection: ServerConnection, raw: str | bytes) -> None:
        """One request from a connection; any problem is answered with an ERROR to that connection only."""
        try:
            await self._handle(connection, claims_of(connection), raw)
        except frames.FrameError as error:
            self.error(connection, error.code, error.message,
                       frames.request_id_of(raw) if isinstance(raw, str) else "")
        except Exception:  # a bug answers 500 to this client and keeps serving everyone
            log.exception("error handling a chat request")
            self.error(connection, 500, "internal server error", "")

    async def expire(self, connection: ServerConnection) -> None:
        self.error(connection, 401, "chat session has expired", "")
        await connection.close(1000, "session expired")

    async def _handle(self, connection: ServerConnection, claims: tokens.TokenClaims, raw: str | bytes) -> None:
        if len(raw.encode() if isinstance(raw, str) else raw) > MAX_FRAME_BYTES:
            raise frames.FrameError(f"frame is larger than {MAX_FRAME_BYTES} bytes", 413)
        request = frames.parse_request(raw)
        room = self.state.get(ROOM, claims.room_arn)
        if room is None:
            raise frames.FrameError("chat room not found", 404)
        if not claims.can(request.action):
            raise frames.FrameError(f"connection does not have the {request.action} capability", 403)
        problem = _field_problem(request)
        if problem:
            raise frames.FrameError(problem, 400)
        if isinstance(request, frames.SendMessageRequest):
            await self._send_message(connection, claims, room, request)
        elif isinstance(request, frames.DeleteMessageRequest):
            if not self.quotas.allow("DeleteMessage"):  # one window with the DeleteMessage API
                raise frames.FrameError(f"rate exceeded: DeleteMessage allows {self.quotas.limit('DeleteMessage')} "
                                        "requests per second (API and DELETE_MESSAGE together)", 429)
            self.delete_message(claims.room_arn, request.id, request.reason, request.request_id)
        else:
            self.disconnect_user(claims.room_arn, request.user_id, request.reason, request.request_id)

    async def _send_message(self, connection: ServerConnection, claims: tokens.TokenClaims,
                            room: dict[str, Any], request: frames.SendMessageRequest) -> None:
        content, attributes = request.content, request.attributes
        limit = room["maximumMessageLength"]
        problem = rules.content_problem(content, limit)
        if problem:
            raise frames.FrameError(problem, 400)
        if not rules.attributes_fit(attributes):
            raise frames.FrameError(f"Attributes exceed {MAX_ATTRIBUTES_BYTES} bytes", 413)
        if not self._rate(room).allow():
            raise frames.FrameError(f"rate limit exceeded: the room allows "
                                    f"{room['maximumMessageRatePerSecond']} messages per second", 429)
        message_id = formats.new_id()
        handler = room.get("messageReviewHandler", {})
        if handler.get("uri"):  # "" (or no uri): the room has a handler that invokes nothing
            verdict = await self.review.review(handler, {
                "Content": content, "MessageId": message_id, "RoomArn": room["arn"], "Attributes": attributes or {},
                "Sender": {"Attributes": claims.attributes, "UserId": claims.user_id,
                           "Ip": _peer_ip(connection)},
            }, limit)
            if not verdict.allowed:
                # The ERROR carries the id the handler saw (never delivered, so no client has seen it).
                self.error(connection, 406, "message was denied by the message review handler", request.request_id,
                           error_id=message_id)
                return
            content, attributes = verdict.content or content, verdict.attributes if verdict.attributes is not None \
                else attributes
        self._deliver(room["arn"], frames.ChatMessage(
            id=message_id, content=content, attributes=attributes, request_id=request.request_id,
            send_time=_send_time(), sender=frames.Sender(claims.user_id, claims.attributes)))

    def _rate(self, room: dict[str, Any]) -> RateWindow:
        window = self._rates.get(room["arn"])
        if window is None:
            window = self._rates[room["arn"]] = RateWindow(room["maximumMessageRatePerSecond"])
        window.limit = room["maximumMessageRatePerSecond"]  # UpdateRoom applies at once
        return window

    # -- fan-out (also the control plane's LiveChat) -----------------------------------------
    def _deliver(self, room_arn: str, frame: frames.Frame) -> None:
        self.fanout.broadcast(self._rooms.get(room_arn, ()), frames.dumps(frame))
        for listener in self.listeners:
            try:
                listener(room_arn, frame)
            except Exception:  # a failing log sink or dashboard never blocks chat
                log.exception("chat listener failed")

    def error(self, connection: ServerConnection, code: int, message: str, request_id: str,
              error_id: str | None = None) -> None:
        """An ERROR frame to one connection, written at once (a close may follow).

        Its ``Id`` names the failed operation: ``error_id`` when IVS had already given it one (the
        documented case is a message the review handler denied), else a fresh id.
        """
        claims = claims_of(connection)
        self.activity.error("message", code, message, claims.room_arn, claims.user_id)
        self.fanout.send_now(connection, frames.dumps(frames.ChatErrorFrame(
            id=error_id or formats.new_id(), error_code=code, error_message=message, request_id=request_id)))

    def send_event(self, room_arn: str, event_name: str, attributes: dict[str, str] | None,
                   request_id: str = "") -> str:
        event = frames.ChatEvent(id=formats.new_id(), event_name=event_name, attributes=attributes,
                                 request_id=request_id, send_time=_send_time())
        self._on_loop(self._deliver, room_arn, event)
        return event.id

    def delete_message(self, room_arn: str, message_id: str, reason: str | None, request_id: str = "") -> str:
        return self.send_event(room_arn, frames.DELETE_MESSAGE_EVENT,
                               {"MessageID": message_id, "MessageId": message_id, "Reason": reason or ""},
                               request_id)

    def disconnect_user(self, room_arn: str, user_id: str, reason: str | None, request_id: str = "") -> None:
        self.send_event(room_arn, frames.DISCONNECT_USER_EVENT, {"UserId": user_id, "Reason": reason or ""},
                        request_id)
        self._on_loop(self._close_user, room_arn, user_id)

    def _close_user(self, room_arn: str, user_id: str) -> None:
        for connection in self.connections(room_arn):
            if claims_of(connection).user_id == user_id:
                self.spawn(connection.close(1000, "disconnected by a moderator"))

    def close_room(self, room_arn: str, reason: str = "chat room deleted") -> None:
        """Close every connection in the room (DeleteRoom, a presenter closing the room, a reset)."""
        self._on_loop(self._close_room, room_arn, reason)

    def _close_room(self, room_arn: str, reason: str) -> None:
        self._rates.pop(room_arn, None)
        for connection in self.connections(room_arn):
            self.spawn(connection.close(1000, reason))

    def close_all(self, reason: str) -> None:
        """Close every connection in every room (a reset)."""
        self._on_loop(self._close_all, reason)

    def _close_all(self, reason: str) -> None:
        for room_arn in list(self._rooms):
            self._close_room(room_arn, reason)
        self._rates.clear()

    def users(self, room_arn: str) -> list[dict[str, Any]]:
        """Who is connected to the room: user id, display name and number of connections, by user id."""
        found: dict[str, dict[str, Any]] = {}
        for connection in self.connections(room_arn):
            claims = claims_of(connection)
            user = found.setdefault(claims.user_id, {
                "userId": claims.user_id, "displayName": claims.attributes.get("displayName", ""), "connections": 0})
            user["connections"] += 1
        return sorted(found.values(), key=lambda user: user["userId"])


def _field_problem(request: frames.Request) -> str | None:
    """DELETE_MESSAGE and DISCONNECT_USER do what the API operations of the same name do, so the
    values the API refuses (a message id that is not one, an over-long user id or reason) are refused
    here too, by the model's rules."""
    if isinstance(request, frames.DeleteMessageRequest):
        checks = [("DeleteMessage", "id", "Id", request.id), ("DeleteMessage", "reason", "Reason", request.reason)]
    elif isinstance(request, frames.DisconnectUserRequest):
        checks = [("DisconnectUser", "userId", "UserId", request.user_id),
                  ("DisconnectUser", "reason", "Reason", request.reason)]
    else:
        return None
    for operation, member, field, value in checks:
        problem = None if value is None else validation.member_problem(operation, member, value, field)
        if problem:
            return problem
    return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _send_time() -> str:
    return formats.rfc3339_nanos(time.time_ns())


def _peer_ip(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else ""
