"""The messaging endpoint: IVS Chat's WebSocket protocol on ``websockets`` (the service's routes).

A connection is opened with a chat token as its only subprotocol (echoed back); each token opens
one connection, once. The handshake refuses bad, reused or expired tokens and deleted rooms before
the upgrade; after it, every frame read goes to :class:`~.models.MessagingService`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ivs_widgets.sandbox.core import tokens
from ivs_widgets.sandbox.core.state import ROOM
from ivs_widgets.sandbox.messaging import websockets_internals as internals
from ivs_widgets.sandbox.messaging.models import MessagingService, claims_of

#: Frames above this are refused by ``websockets`` itself (close 1009): protects the process.
MAX_WIRE_BYTES = 1024 * 1024
#: On stop, how long clients have to answer the closing handshake before their connections are dropped.
#: A client on a notebook kernel's own loop cannot answer while the cell that stops the sandbox runs.
STOP_GRACE_SECONDS = 2.0


class MessagingEndpoint:
    """Accepts WebSocket connections for a :class:`MessagingService`. Runs on the sandbox's loop.

    ``capacity`` is how many chat connections the process's descriptors allow; the account quota
    (``config.max_connections``) may be lower. Past either, a handshake is refused at once, with the
    reason, before its token is looked at (so the token can still be used once there is room).
    """

    def __init__(self, service: MessagingService, capacity: int) -> None:
        self.service = service
        self.capacity = capacity
        self._server: Server | None = None

    async def start(self, listening: socket.socket, ssl_context: ssl.SSLContext | None = None) -> int:
        """Serve on ``listening`` (bound and listening); returns its port."""
        self.service.bind(asyncio.get_running_loop())
        self._server = await serve(self._serve_connection, sock=listening, ssl=ssl_context,
                                   process_request=self._authorize, select_subprotocol=_echo_token,
                                   max_size=MAX_WIRE_BYTES, max_queue=64, compression=None,
                                   create_connection=self.service.fanout.connection_class,
                                   server_header="ivs-sandbox", logger=_TokenRedactingLogger(_WEBSOCKETS_LOG))
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection and stop listening; then cancel what the service still runs."""
        if self._server is not None:
            self._server.close()  # every connection gets 1001 "going away"
            try:
                await asyncio.wait_for(asyncio.shield(self._server.wait_closed()), STOP_GRACE_SECONDS)
            except TimeoutError:
                for connection in self.service.all_connections():
                    internals.abort(connection)
                await self._server.wait_closed()
            self._server = None
        await self.service.cancel_tasks()

    # -- handshake ---------------------------------------------------------------------------
    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse bad, reused or expired tokens and deleted rooms before the upgrade, and any handshake
        past the descriptor capacity or the account's connection quota."""
        open_now = self.service.connection_count
        if open_now >= self.capacity:
            return self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE,
                                f"sandbox at its connection limit ({self.capacity}): raise ulimit -n "
                                "(open files) and restart the sandbox for more")
        quota = self.service.config.max_connections
        if open_now >= quota:
            return self._refuse(connection, HTTPStatus.TOO_MANY_REQUESTS,
                                f"account quota reached: at most {quota} concurrent chat connections "
                                "(ivs-sandbox --max-connections)")
        offered = _offered_subprotocols(request.headers)
        if len(offered) != 1:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "a chat token is required as the only "
                                                                     "Sec-WebSocket-Protocol value")
        state = self.service.state
        now = time.time()
        try:
            claims = tokens.verify(offered[0], state.token_secret, now)
        except tokens.TokenError as error:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, str(error))
        if state.get(ROOM, claims.room_arn) is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "chat room not found", claims)
        if now >= claims.session_expires_at:
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "chat session has expired", claims)
        if not state.spend_token(claims.jti, claims.token_expires_at, now):
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "chat token has already been used", claims)
        connection.claims = claims  # type: ignore[attr-defined]
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str,
                claims: tokens.TokenClaims | None = None) -> Response:
        self.service.activity.error("handshake", status.value, reason, claims.room_arn if claims else "",
                                    claims.user_id if claims else "")
        return connection.respond(status, f"{reason}\n")

    # -- one connection ----------------------------------------------------------------------
    async def _serve_connection(self, connection: ServerConnection) -> None:
        service = self.service
        claims = claims_of(connection)
        service.join(connection)
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(loop.time() + max(0.0, claims.session_expires_at - time.time()),
                              lambda: service.spawn(service.expire(connection)))
        try:
            async for raw in connection:
                await service.handle(connection, raw)
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            service.leave(connection)


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
