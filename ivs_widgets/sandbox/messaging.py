"""The messaging endpoint: IVS Chat's WebSocket protocol, on ``websockets``.

A connection is opened with a chat token as its only subprotocol (echoed back); each token opens
one connection, once. Requests are checked against the token's capabilities and the room's current
limits; MESSAGE and EVENT frames go to every connection in the room, ERROR frames only to the
requester. Nothing a client sends can crash the server or affect anyone else's connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from http import HTTPStatus
from typing import Any, Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ivs_widgets.chat import frames
from ivs_widgets.constants import MAX_ATTRIBUTES_BYTES, attributes_bytes
from ivs_widgets.sandbox import ids, tokens
from ivs_widgets.sandbox.activity import Activity
from ivs_widgets.sandbox.config import SandboxConfig
from ivs_widgets.sandbox.fanout import FanOut, RoomConnection
from ivs_widgets.sandbox.ratelimit import RateWindow
from ivs_widgets.sandbox.review import ReviewHandler, ReviewHandlers
from ivs_widgets.sandbox.state import ROOM, State

log = logging.getLogger("ivs_widgets.sandbox.messaging")

#: Largest WebSocket frame read as a request; bigger ones get ERROR 413 and the connection stays.
MAX_FRAME_BYTES = 64 * 1024
#: Frames above this are refused by ``websockets`` itself (close 1009): protects the process.
MAX_WIRE_BYTES = 1024 * 1024

__all__ = ["MessagingServer", "ReviewHandler"]

Listener = Callable[[str, frames.Frame], None]


class MessagingServer:
    """Rooms of live connections. All methods run on the sandbox's event loop."""

    def __init__(self, state: State, config: SandboxConfig) -> None:
        self.state = state
        self.config = config
        self.review = ReviewHandlers()
        #: Called with (room ARN, frame) for every MESSAGE and EVENT delivered (chat logging, dashboards).
        #: Message rates and recent denials per room, for the presenter's dashboard.
        self.activity = Activity()
        self.listeners: list[Listener] = [self.activity]
        self._rooms: dict[str, set[ServerConnection]] = {}
        self._rates: dict[str, RateWindow] = {}
        self._fanout = FanOut()
        self._server: Server | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        self._server = await serve(self._serve_connection, host, port, ssl=ssl_context,
                                   process_request=self._authorize, select_subprotocol=_echo_token,
                                   max_size=MAX_WIRE_BYTES, max_queue=64, compression=None,
                                   create_connection=RoomConnection,
                                   server_header="ivs-sandbox", logger=_TokenRedactingLogger(_WEBSOCKETS_LOG))
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def register_lambda(self, arn: str, handler: ReviewHandler) -> None:
        self.review.register(arn, handler)

    def connections(self, room_arn: str) -> list[ServerConnection]:
        return list(self._rooms.get(room_arn, ()))

    # -- handshake ---------------------------------------------------------------------------
    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse bad, reused or expired tokens and deleted rooms before the upgrade."""
        offered = _offered_subprotocols(request.headers)
        if len(offered) != 1:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "a chat token is required as the only "
                                                                     "Sec-WebSocket-Protocol value")
        now = time.time()
        try:
            claims = tokens.verify(offered[0], self.state.token_secret, now)
        except tokens.TokenError as error:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, str(error))
        if self.state.get(ROOM, claims.room_arn) is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "chat room not found", claims)
        if now >= claims.session_expires_at:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "chat session has expired", claims)
        if not self.state.spend_token(claims.jti, claims.token_expires_at, now):
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "chat token has already been used", claims)
        connection.claims = claims  # type: ignore[attr-defined]
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str,
                claims: tokens.TokenClaims | None = None) -> Response:
        self.activity.error("handshake", status.value, reason, claims.room_arn if claims else "",
                            claims.user_id if claims else "")
        return connection.respond(status, f"{reason}\n")

    # -- one connection ----------------------------------------------------------------------
    async def _serve_connection(self, connection: ServerConnection) -> None:
        claims: tokens.TokenClaims = connection.claims  # type: ignore[attr-defined]
        room = self._rooms.setdefault(claims.room_arn, set())
        room.add(connection)
        expiry = asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time() + max(0.0, claims.session_expires_at - time.time()),
            lambda: asyncio.ensure_future(self._expire(connection)))
        try:
            async for raw in connection:
                try:
                    await self._handle(connection, claims, raw)
                except frames.FrameError as error:
                    self._error(connection, error.code, str(error), frames.request_id_of(raw)
                                if isinstance(raw, str) else "")
                except Exception:  # a bug answers 500 to this client and keeps serving everyone
                    log.exception("error handling a chat request")
                    self._error(connection, 500, "internal server error", "")
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            room.discard(connection)
            if not room:
                self._rooms.pop(claims.room_arn, None)

    async def _expire(self, connection: ServerConnection) -> None:
        self._error(connection, 401, "chat session has expired", "")
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
        if isinstance(request, frames.SendMessageRequest):
            await self._send_message(connection, claims, room, request)
        elif isinstance(request, frames.DeleteMessageRequest):
            self.delete_message(claims.room_arn, request.id, request.reason, request.request_id)
        else:
            self.disconnect_user(claims.room_arn, request.user_id, request.reason, request.request_id)

    async def _send_message(self, connection: ServerConnection, claims: tokens.TokenClaims,
                            room: dict[str, Any], request: frames.SendMessageRequest) -> None:
        content, attributes = request.content, request.attributes
        limit = room["maximumMessageLength"]
        if not content:
            raise frames.FrameError("Content must not be empty", 400)
        if len(content) > limit:
            raise frames.FrameError(f"Content is {len(content)} characters; the room allows at most {limit}", 400)
        if attributes and attributes_bytes(attributes) > MAX_ATTRIBUTES_BYTES:
            raise frames.FrameError(f"Attributes exceed {MAX_ATTRIBUTES_BYTES} bytes", 413)
        if not self._rate(room).allow():
            raise frames.FrameError(f"rate limit exceeded: the room allows "
                                    f"{room['maximumMessageRatePerSecond']} messages per second", 429)
        message_id = ids.new_id()
        handler = room.get("messageReviewHandler")
        if handler:
            verdict = await self.review.review(handler, {
                "Content": content, "MessageId": message_id, "RoomArn": room["arn"], "Attributes": attributes or {},
                "Sender": {"Attributes": claims.attributes, "UserId": claims.user_id,
                           "Ip": _peer_ip(connection)},
            }, limit)
            if not verdict.allowed:
                raise frames.FrameError("message was denied by the message review handler", 406)
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
        self._fanout.broadcast(self._rooms.get(room_arn, ()), frames.dumps(frame))
        for listener in self.listeners:
            try:
                listener(room_arn, frame)
            except Exception:  # a failing log sink or dashboard never blocks chat
                log.exception("chat listener failed")

    def _error(self, connection: ServerConnection, code: int, message: str, request_id: str) -> None:
        claims: tokens.TokenClaims = connection.claims  # type: ignore[attr-defined]
        self.activity.error("message", code, message, claims.room_arn, claims.user_id)
        self._fanout.send_now(connection, frames.dumps(frames.ChatErrorFrame(
            id=ids.new_id(), error_code=code, error_message=message, request_id=request_id)))

    def send_event(self, room_arn: str, event_name: str, attributes: dict[str, str] | None,
                   request_id: str = "") -> str:
        event = frames.ChatEvent(id=ids.new_id(), event_name=event_name, attributes=attributes,
                                 request_id=request_id, send_time=_send_time())
        self._deliver(room_arn, event)
        return event.id

    def delete_message(self, room_arn: str, message_id: str, reason: str | None, request_id: str = "") -> str:
        return self.send_event(room_arn, frames.DELETE_MESSAGE_EVENT,
                               {"MessageID": message_id, "MessageId": message_id, "Reason": reason or ""},
                               request_id)

    def disconnect_user(self, room_arn: str, user_id: str, reason: str | None, request_id: str = "") -> None:
        self.send_event(room_arn, frames.DISCONNECT_USER_EVENT, {"UserId": user_id, "Reason": reason or ""},
                        request_id)
        for connection in self.connections(room_arn):
            if connection.claims.user_id == user_id:  # type: ignore[attr-defined]
                asyncio.ensure_future(connection.close(1000, "disconnected by a moderator"))

    def close_room(self, room_arn: str, reason: str = "chat room deleted") -> None:
        """Close every connection in the room (DeleteRoom, a presenter closing the room, a reset)."""
        self._rates.pop(room_arn, None)
        for connection in self.connections(room_arn):
            asyncio.ensure_future(connection.close(1000, reason))

    def close_all(self, reason: str) -> None:
        """Close every connection in every room (a reset)."""
        for room_arn in list(self._rooms):
            self.close_room(room_arn, reason)
        self._rates.clear()

    def users(self, room_arn: str) -> list[dict[str, Any]]:
        """Who is connected to the room: user id, display name and number of connections, by user id."""
        found: dict[str, dict[str, Any]] = {}
        for connection in self.connections(room_arn):
            claims: tokens.TokenClaims = connection.claims  # type: ignore[attr-defined]
            user = found.setdefault(claims.user_id, {
                "userId": claims.user_id, "displayName": claims.attributes.get("displayName", ""), "connections": 0})
            user["connections"] += 1
        return sorted(found.values(), key=lambda user: user["userId"])


_WEBSOCKETS_LOG = logging.getLogger("websockets.server")


class _TokenRedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``websockets`` logs every handshake header at DEBUG, and the chat token is one of them."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if len(args) == 2 and str(args[0]).lower() == "sec-websocket-protocol":
            args = (args[0], "<chat token>")
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # keep the ``extra`` websockets adds (the connection)


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",") if p.strip()]


def _echo_token(connection: ServerConnection, subprotocols: Any) -> Any:
    """Select the token itself: clients (browsers, Node, the official SDK) require the echo."""
    return subprotocols[0] if subprotocols else None


def _send_time() -> str:
    return ids.rfc3339_nanos(time.time_ns())


def _peer_ip(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else ""
