"""Raw-WebSocket steps shared by the messaging tests, on the plain ``websockets`` client.

The tests talk to the sandbox the way any IVS Chat client does (token as the only subprotocol,
JSON text frames), so they check the wire protocol itself rather than our own client library.
Every wait has a timeout: a missing frame fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from ivs_widgets.sandbox import Sandbox

#: Longest wait for a frame or a close that should come; generous so a loaded machine stays green.
TIMEOUT = 5.0

ALL_CAPABILITIES = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")

Frame = dict[str, Any]


def mint(sandbox: Sandbox, room_arn: str, user: str = "alice", capabilities: tuple[str, ...] = ALL_CAPABILITIES,
         attributes: dict[str, str] | None = None, *, session_seconds: float = 3600,
         token_seconds: float | None = None) -> str:
    """A fresh chat token, with lifetimes in seconds (CreateChatToken only offers minutes)."""
    return sandbox.control.mint_token(room_arn, user, capabilities, attributes, session_seconds=session_seconds,
                                      token_seconds=token_seconds)["token"]


async def open_socket(sandbox: Sandbox, token: str | None, path: str = "") -> ClientConnection:
    """Open a connection offering ``token`` as the only subprotocol (none when ``token`` is None)."""
    return await connect(sandbox.messaging_endpoint + path, subprotocols=None if token is None else [token],
                         open_timeout=TIMEOUT, close_timeout=TIMEOUT)


async def join(sandbox: Sandbox, room_arn: str, user: str = "alice",
               capabilities: tuple[str, ...] = ALL_CAPABILITIES, attributes: dict[str, str] | None = None,
               **lifetimes: float) -> ClientConnection:
    """Connect to a room with a freshly minted token."""
    return await open_socket(sandbox, mint(sandbox, room_arn, user, capabilities, attributes, **lifetimes))


async def refused_status(sandbox: Sandbox, subprotocols: list[str] | None, path: str = "") -> int:
    """The HTTP status of a handshake the server must refuse (fails if it is accepted)."""
    try:
        ws = await connect(sandbox.messaging_endpoint + path, subprotocols=subprotocols, open_timeout=TIMEOUT)
    except InvalidStatus as refused:
        return refused.response.status_code
    await ws.close()
    raise AssertionError("the server accepted the connection")


async def send(ws: ClientConnection, **fields: Any) -> None:
    await ws.send(json.dumps(fields))


async def say(ws: ClientConnection, content: str, request_id: str = "", **extra: Any) -> None:
    """Send a SEND_MESSAGE request with the SDK's key spelling."""
    await send(ws, Action="SEND_MESSAGE", RequestId=request_id, Content=content, **extra)


async def next_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> Frame:
    """The next frame as decoded JSON; server frames are always text."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"server sent a binary frame: {raw!r}"
    return json.loads(raw)


async def next_of(ws: ClientConnection, kind: str, timeout: float = TIMEOUT) -> Frame:
    """The next frame, which must be of Type ``kind``."""
    frame = await next_frame(ws, timeout)
    assert frame["Type"] == kind, f"expected {kind}, got {frame}"
    return frame


async def closed_with(ws: ClientConnection, timeout: float = TIMEOUT) -> int | None:
    """Wait for the server to close the connection; its close code (None if no close frame came)."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code


async def barrier(ivschat: Any, room_arn: str, *sockets: ClientConnection) -> None:
    """Prove nothing else is on its way: a control-plane event sent now must be each socket's next frame.

    The server handles one room's deliveries in order, so anything that was going to reach these
    sockets before this point would arrive ahead of the event.
    """
    event_id = (await asyncio.to_thread(ivschat.send_event, roomIdentifier=room_arn, eventName="test:barrier"))["id"]
    for ws in sockets:
        frame = await next_frame(ws)
        assert (frame["Type"], frame["Id"]) == ("EVENT", event_id), f"unexpected frame before the barrier: {frame}"
