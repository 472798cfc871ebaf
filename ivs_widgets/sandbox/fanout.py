"""Fan-out of text frames to a room: each message framed once, the room's connections written in turns.

``websockets.asyncio.server.broadcast`` frames a message again for every connection and writes it at
once: one ``send`` system call per connection per message, the whole room before the loop can do
anything else. At a room's full rate (100 messages/s to 1,000 viewers) that took more than a core,
so the sandbox fell behind and latency grew to seconds. Here a message is serialised once (the
sandbox's connections are server-side, so never masked, and negotiate no extension,
``compression=None``: every viewer gets the same bytes) and appended to each connection's queue. A
writer goes through the waiting connections :data:`WRITES_PER_TURN` at a time, each queue in one
write; between turns the loop reads new requests, and a message that arrives meanwhile joins the
queues of the connections not yet written, so it shares their write instead of costing its own. A
room that fits in one turn, with nothing queued, is written at once, as ``broadcast`` would; under
load the writes per message fall as the load rises, and a message waits at most about one pass over the room. The bytes on the wire are
the same frames in the same order as with ``broadcast``.

``broadcast``'s rules are kept, checked when the bytes are written: connections that are not OPEN
(closing handshake started) are skipped, so are connections sending a fragmented message (with a
warning), and a failed write is logged and never stops delivery to the others. Closing a connection
writes its queue first (a DISCONNECT_USER event must reach the user before the close it announces).
One rule is added: ``broadcast`` has no backpressure and ``websockets``' keepalive ping waits for a
full buffer to drain, so a client that stops reading would hold every later message in memory for as
long as its TCP connection lives; a connection owing more than :data:`SLOW_CONSUMER_BYTES` is closed
with 1008.
"""

from __future__ import annotations

import asyncio
import traceback
from collections import deque
from typing import Any, Collection

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import OPEN

__all__ = ["SLOW_CONSUMER_BYTES", "SLOW_CONSUMER_REASON", "FanOut", "RoomConnection"]

#: Connections written per loop turn; between turns the loop reads requests and runs other callbacks.
WRITES_PER_TURN = 100
#: After each turn the writer rests this fraction of the time the turn took, so fan-out takes at most
#: 80% of the loop: requests, handshakes and the control plane keep the rest, and more messages share
#: each write. A small room (a turn of microseconds) never waits.
REST_PER_TURN = 0.25

#: Bytes a connection may have waiting in the sandbox's own write buffer, on top of the kernel's socket
#: buffers (themselves often megabytes), before it is closed as a slow consumer: at a room's highest
#: rate with the longest messages, several seconds of chat its client has not read.
SLOW_CONSUMER_BYTES = 1024 * 1024

SLOW_CONSUMER_REASON = "slow consumer: too many unread messages"


class RoomConnection(ServerConnection):
    """A chat connection: frames fanned out to it wait in :attr:`queued` for the writer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queued: list[bytes] = []

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Write what is queued, then close: nothing may follow a close frame."""
        self.flush()
        await super().close(code, reason)

    def data_received(self, data: bytes) -> None:
        """Write what is queued before reading what the client sent.

        The client's bytes may hold a close frame, which the protocol answers at once; nothing can
        be written after that. ``broadcast`` wrote every frame as it was sent, so a frame fanned out
        before the close arrived always went out (the official SDK, rotating tokens, closes its old
        connection right after a request on it and waits for the echo there).
        """
        self.flush()
        super().data_received(data)

    def flush(self) -> None:
        """Write the queue in one write, unless ``broadcast``'s rules skip this connection."""
        if self.queued:
            frames, self.queued = self.queued, []
            _write(self, frames)


class FanOut:
    """Connections with queued frames, written a few at a time in turn. Use on the server's loop only."""

    def __init__(self) -> None:
        self._waiting: deque[RoomConnection] = deque()
        self._write_handle: asyncio.TimerHandle | None = None
        self._rested_at = float("-inf")

    def broadcast(self, connections: Collection[RoomConnection], text: str) -> None:
        """Send ``text`` as one text frame to every connection, with whatever else is queued for it.

        With nothing queued anywhere, a room that fits in one turn is written at once, as
        ``broadcast`` does: a client sees the frame before anything the loop does next (the
        official SDK, rotating tokens, stops listening to its old connection as soon as the new
        one's handshake completes, and may still expect an echo on the old one).
        """
        wire = _text_frame(text)
        waiting = self._waiting
        if not waiting and len(connections) <= WRITES_PER_TURN:
            for connection in connections:
                _write(connection, [wire])
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
        connection.queued.append(_text_frame(text))
        connection.flush()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._write_handle = loop.call_at(max(loop.time(), self._rested_at), self._write_some)

    def _write_some(self) -> None:
        """Write the queues of the next few connections, then rest in proportion before the next few."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = self._waiting
        for _ in range(min(WRITES_PER_TURN, len(waiting))):
            waiting.popleft().flush()
        finished = loop.time()
        self._rested_at = finished + REST_PER_TURN * (finished - started)
        self._write_handle = None
        if waiting:
            self._schedule()


def _text_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def _write(connection: ServerConnection, frames: list[bytes]) -> None:
    protocol = connection.protocol
    if protocol.state is not OPEN:
        return
    if connection.send_in_progress is not None:
        connection.logger.warning("skipped broadcast: sending a fragmented message")
        return
    transport = connection.transport
    try:
        if transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES:
            _close_slow_consumer(connection)
            return
        if protocol.debug:
            protocol.logger.debug("> %d TEXT frame(s), framed once for the room", len(frames))
        transport.write(b"".join(frames))
    except Exception as error:
        connection.logger.warning("skipped broadcast: failed to write message: %s",
                                  traceback.format_exception_only(error)[0].strip())


def _close_slow_consumer(connection: ServerConnection) -> None:
    """Start the closing handshake now (later frames then skip it) and abort if it does not finish in time.

    ``connection.close()`` would first wait for the full buffer to drain, which for a client that
    stopped reading is never, and only then start its close timeout.
    """
    connection.logger.warning("closing a slow consumer: %d bytes unsent", connection.transport.get_write_buffer_size())
    connection.protocol.send_close(CloseCode.POLICY_VIOLATION, SLOW_CONSUMER_REASON)
    connection.send_data()
    connection.loop.call_later(connection.close_timeout or 0.0, connection.transport.abort)
