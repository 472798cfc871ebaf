"""The only place the sandbox touches ``websockets`` internals, checked at import, with a public fallback.

The fan-out (:mod:`.fanout`) frames a message once for a whole room and writes each connection's
queue in one system call. For that it needs a few members of ``websockets.asyncio`` that are not
public API: ``Connection.data_received`` (to write queued frames before reading a close),
``Connection.send_data``, ``Connection.send_in_progress``, ``Connection.transport`` and
``Protocol.send_close``. pyproject pins ``websockets>=17,<18``; :func:`missing` checks that each is
still there, and when one is not, the sandbox falls back to the public
``websockets.asyncio.server.broadcast`` (slower for big rooms, same frames) and logs one line.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import OPEN, Protocol

log = logging.getLogger("ivs_widgets.sandbox.messaging")

#: Class → (methods it must have, instance attributes its methods must set).
REQUIRED: dict[type, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    Connection: (("data_received", "send_data", "close"),
                 (("__init__", "send_in_progress"), ("connection_made", "transport"), ("__init__", "protocol"))),
    Protocol: (("send_close",), (("__init__", "state"),)),
}

_warned = False

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
            write_frames(self, frames)


def missing() -> list[str]:
    """The internals that this ``websockets`` lacks (empty: the fast fan-out can run)."""
    absent = []
    for cls, (methods, attributes) in REQUIRED.items():
        absent += [f"{cls.__name__}.{name}()" for name in methods if not callable(getattr(cls, name, None))]
        for method, attribute in attributes:
            code = getattr(getattr(cls, method, None), "__code__", None)
            if code is None or attribute not in code.co_names:
                absent.append(f"{cls.__name__}.{attribute}")
    return absent


def internals_usable() -> bool:
    """True when the fast fan-out can run; else warn (once per process) and use the fallback."""
    global _warned
    absent = missing()
    if absent and not _warned:
        _warned = True
        log.warning("websockets lacks %s: fan-out falls back to websockets.asyncio.server.broadcast",
                    ", ".join(absent))
    return not absent


def text_frame(text: str) -> bytes:
    """One unmasked TEXT frame (server side, no extensions): the same bytes for every viewer."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def close_now(connection: ServerConnection, code: int, reason: str) -> None:
    """Start the closing handshake at once (not after the write buffer drains) and abort the TCP
    connection if it does not finish within the connection's close timeout."""
    connection.protocol.send_close(CloseCode(code), reason)
    connection.send_data()
    connection.loop.call_later(connection.close_timeout or 0.0, connection.transport.abort)


def abort(connection: ServerConnection) -> None:
    """Drop the TCP connection now, without waiting for the closing handshake to finish."""
    transport = getattr(connection, "transport", None)
    if transport is not None:
        transport.abort()


def broadcast_public(connections: Any, text: str) -> None:
    """The fallback: websockets' own public broadcast (frames per connection, written at once)."""
    broadcast(connections, text)


def write_frames(connection: ServerConnection, frames: list[bytes]) -> None:
    """``broadcast``'s rules, then one write of every queued frame (the hot path: attributes are read
    directly, once per connection and pass)."""
    if connection.protocol.state is not OPEN:
        return
    try:
        if connection.send_in_progress is not None:
            connection.logger.warning("skipped broadcast: sending a fragmented message")
            return
        transport = connection.transport
        if transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES:
            _close_slow_consumer(connection)
            return
        protocol = connection.protocol
        if protocol.debug:
            protocol.logger.debug("> %d TEXT frame(s), framed once for the room", len(frames))
        transport.write(b"".join(frames))
    except Exception as error:
        connection.logger.warning("skipped broadcast: failed to write message: %s",
                                  traceback.format_exception_only(error)[0].strip())


def _close_slow_consumer(connection: ServerConnection) -> None:
    """Close now (later frames then skip it): ``connection.close()`` would first wait for the full
    buffer to drain, which for a client that stopped reading is never."""
    connection.logger.warning("closing a slow consumer: %d bytes unsent", connection.transport.get_write_buffer_size())
    close_now(connection, CloseCode.POLICY_VIOLATION, SLOW_CONSUMER_REASON)
