"""Fan-out of text frames to a room: each message framed once, the room's connections written in turns.

``websockets.asyncio.server.broadcast`` frames a message again for every connection and writes it at
once: one ``send`` system call per connection per message, the whole room before the loop can do
anything else. At a room's full rate (100 messages/s to 1,000 viewers) that took more than a core,
so the sandbox fell behind and latency grew to seconds. Here a message is serialised once (the
sandbox's connections are server-side, so never masked, and negotiate no extension,
``compression=None``: every viewer gets the same bytes) and appended to each connection's queue. A
writer goes through the waiting connections :data:`WRITES_PER_TURN` at a time, each queue in one
write; between turns the loop reads new requests and runs the control plane, and a message that
arrives meanwhile joins the queues of the connections not yet written, so it shares their write
instead of costing its own. A room that fits in one turn, with nothing queued, is written at once, as
``broadcast`` would; under load the writes per message fall as the load rises, and a message waits
at most about one pass over the room. Turns follow each other without a pause: a pass over 10,000
viewers is already about a hundred milliseconds of system calls, and resting between turns (a
quarter of each turn, tried before) only made every viewer wait longer (``benchmarks/README.md``,
soak at 10,000 viewers). The bytes on the wire are the same frames in the same order as with
``broadcast``.

``broadcast``'s rules are kept, checked when the bytes are written: connections that are not OPEN
(closing handshake started) are skipped, so are connections sending a fragmented message (with a
warning), and a failed write is logged and never stops delivery to the others. Closing a connection
writes its queue first (a DISCONNECT_USER event must reach the user before the close it announces).
One rule is added: ``broadcast`` has no backpressure and ``websockets``' keepalive ping waits for a
full buffer to drain, so a client that stops reading would hold every later message in memory for as
long as its TCP connection lives; a connection owing more than :data:`SLOW_CONSUMER_BYTES` is closed
with 1008.

Everything that touches ``websockets`` internals goes through :mod:`.websockets_internals`; when they
are missing, :func:`make_fanout` returns :class:`BroadcastFanOut`, the public ``broadcast``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection

from ivs_widgets.sandbox.messaging import websockets_internals as internals
from ivs_widgets.sandbox.messaging.websockets_internals import SLOW_CONSUMER_BYTES, SLOW_CONSUMER_REASON, RoomConnection

__all__ = ["SLOW_CONSUMER_BYTES", "SLOW_CONSUMER_REASON", "BroadcastFanOut", "FanOut", "RoomConnection",
           "make_fanout"]

#: Connections written per loop turn; between turns the loop reads requests and runs other callbacks.
WRITES_PER_TURN = 100


class Delivery(Protocol):
    """What the messaging service needs of a fan-out."""

    @property
    def connection_class(self) -> type[ServerConnection]: ...

    def broadcast(self, connections: Collection[Any], text: str) -> None: ...
    def send_now(self, connection: Any, text: str) -> None: ...


def make_fanout() -> Delivery:
    """The queued fan-out when this ``websockets`` has the internals it needs, else the public one."""
    return FanOut() if internals.internals_usable() else BroadcastFanOut()


class BroadcastFanOut:
    """The fallback: ``websockets.asyncio.server.broadcast`` for rooms and single connections alike."""

    connection_class = ServerConnection

    def broadcast(self, connections: Collection[ServerConnection], text: str) -> None:
        internals.broadcast_public(connections, text)

    def send_now(self, connection: ServerConnection, text: str) -> None:
        internals.broadcast_public([connection], text)


class FanOut:
    """Connections with queued frames, written a few at a time in turn. Use on the server's loop only."""

    connection_class = RoomConnection

    def __init__(self) -> None:
        self._waiting: deque[RoomConnection] = deque()
        self._write_handle: asyncio.Handle | None = None

    def broadcast(self, connections: Collection[RoomConnection], text: str) -> None:
        """Send ``text`` as one text frame to every connection, with whatever else is queued for it.

        With nothing queued anywhere, a room that fits in one turn is written at once, as
        ``broadcast`` does: a client sees the frame before anything the loop does next (the
        official SDK, rotating tokens, stops listening to its old connection as soon as the new
        one's handshake completes, and may still expect an echo on the old one).
        """
        wire = internals.text_frame(text)
        waiting = self._waiting
        if not waiting and len(connections) <= WRITES_PER_TURN:
            for connection in connections:
                internals.write_frames(connection, [wire])
            return
        for connection in connections:
            queued = connection.queued
            if not queued:
                waiting.append(connection)
            queued.append(wire)
        if waiting and self._write_handle is None:
            self._schedule()

    def send_now(self, connection: RoomConnection, text: str) -> None:
        """Write ``text`` to one connection at once, after what is queued for it (an ERROR; a close may follow)."""
        connection.queued.append(internals.text_frame(text))
        connection.flush()

    def _schedule(self) -> None:
        self._write_handle = asyncio.get_running_loop().call_soon(self._write_some)

    def _write_some(self) -> None:
        """Write the queues of the next few connections; the next few after the loop's next turn."""
        waiting = self._waiting
        for _ in range(min(WRITES_PER_TURN, len(waiting))):
            waiting.popleft().flush()
        self._write_handle = None
        if waiting:
            self._schedule()
