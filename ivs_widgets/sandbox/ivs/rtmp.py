"""RTMP as a publishing encoder speaks it, without I/O: the handshake, the chunk stream, AMF0.

Only what a server needs to take a stream from OBS or ffmpeg (Adobe's RTMP 1.0 specification):
the plain handshake (version 3; encoders that send the Flash Player 9 digest accept a plain answer
when they publish), chunk headers of all four formats with extended timestamps, Set Chunk Size,
and the AMF0 values of ``connect`` / ``releaseStream`` / ``FCPublish`` / ``createStream`` /
``publish`` / ``deleteStream`` and ``@setDataFrame``. Everything a peer sends is bounded: a message
or chunk size out of range, an unknown type marker or more buffered bytes than :data:`MAX_BUFFERED`
raise :class:`RtmpError` and the connection is closed.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import Any

from ivs_widgets.protocol.errors import IvsWidgetsError

VERSION = 3
#: RTMP's own port, what encoders assume when a server URL names none.
RTMP_PORT = 1935
HANDSHAKE_SIZE = 1536
#: Message types (RTMP 1.0 §5.4, §7.1).
SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
AUDIO, VIDEO, DATA_AMF0, COMMAND_AMF0 = 8, 9, 18, 20
#: What a peer's messages may hold at most, all partly received messages together (a 4K keyframe fits).
MAX_BUFFERED = 32 * 1024 * 1024
_MAX_CHUNK_SIZE = 0xFFFFFF  # a message is never longer, so a chunk never needs to be
_EXTENDED = 0xFFFFFF


class RtmpError(IvsWidgetsError):
    """The peer broke the protocol; the connection is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="RtmpError")


# -- handshake -------------------------------------------------------------------------------
def handshake_reply(c0c1: bytes) -> bytes:
    """S0, S1 and S2 for the client's C0 and C1: our version, our random bytes, C1 echoed."""
    if len(c0c1) != 1 + HANDSHAKE_SIZE or c0c1[0] != VERSION:
        raise RtmpError(f"not an RTMP handshake (version byte {c0c1[:1].hex() or 'missing'})")
    return bytes([VERSION]) + bytes(8) + os.urandom(HANDSHAKE_SIZE - 8) + c0c1[1:]


# -- chunk stream ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    type_id: int
    stream_id: int
    #: Milliseconds, as the sender's clock counts them (32 bits).
    timestamp: int
    payload: bytes


@dataclass
class _ChunkStream:
    """What a chunk stream id remembers for the headers that omit fields."""

    timestamp: int = 0
    #: The last header's timestamp field: a delta after type 1 or 2, the absolute time after type 0.
    field: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    started: bool = False
    partial: bytearray | None = None


class ChunkReader:
    """Feed it the bytes after the handshake; it returns the messages they complete."""

    def __init__(self) -> None:
        self.chunk_size = 128
        self._buffer = bytearray()
        self._streams: dict[int, _ChunkStream] = {}
        self._buffered = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while True:
            consumed = self._read_chunk(messages)
            if consumed == 0:
                break
            del self._buffer[:consumed]
        if len(self._buffer) + self._buffered > MAX_BUFFERED:
            raise RtmpError(f"more than {MAX_BUFFERED} bytes of unfinished messages")
        return messages

    def _read_chunk(self, messages: list[Message]) -> int:
        """Read one chunk from the buffer; 0 when it is not all there yet."""
        data, at = self._buffer, 0
        if not data:
            return 0
        fmt, csid = data[0] >> 6, data[0] & 0x3F
        at = 1
        if csid < 2:
            width = csid + 1
            if len(data) < 1 + width:
                return 0
            csid = 64 + int.from_bytes(data[1:1 + width], "little")
            at += width
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise RtmpError(f"chunk stream {csid} starts with a type {fmt} header")
            stream = self._streams[csid] = _ChunkStream()
        header = (11, 7, 3, 0)[fmt]
        if len(data) < at + header:
            return 0
        new_message = stream.partial is None
        field = stream.field
        if fmt <= 2:
            field = int.from_bytes(data[at:at + 3], "big")
        if fmt <= 1:
            length, type_id = int.from_bytes(data[at + 3:at + 6], "big"), data[at + 6]
        else:
            length, type_id = stream.length, stream.type_id
        stream_id = struct.unpack_from("<I", data, at + 7)[0] if fmt == 0 else stream.stream_id
        at += header
        extended = field == _EXTENDED if fmt <= 2 else stream.extended
        if extended:
            if len(data) < at + 4:
                return 0
            if fmt <= 2:
                field = struct.unpack_from(">I", data, at)[0]
            at += 4
        if not new_message and fmt != 3:
            raise RtmpError(f"chunk stream {csid}: a new message header before the last message ended")
        received = 0 if stream.partial is None else len(stream.partial)
        take = min(self.chunk_size, length - received)
        if len(data) < at + take:
            return 0
        # The whole chunk is here: only now does it change the stream's state.
        if new_message:
            base = stream.timestamp if fmt != 0 and stream.started else 0
            stream.timestamp = (base + field) & 0xFFFFFFFF
            stream.field, stream.length, stream.type_id, stream.stream_id = field, length, type_id, stream_id
            stream.extended, stream.started = extended, True
            stream.partial = bytearray()
        assert stream.partial is not None
        stream.partial += data[at:at + take]
        self._buffered += take
        if len(stream.partial) == stream.length:
            payload = bytes(stream.partial)
            self._buffered -= len(payload)
            stream.partial = None
            messages.append(Message(stream.type_id, stream.stream_id, stream.timestamp, payload))
            if stream.type_id == SET_CHUNK_SIZE:
                self.chunk_size = _chunk_size(payload)
        return at + take


def _chunk_size(payload: bytes) -> int:
    if len(payload) < 4:
        raise RtmpError("Set Chunk Size without a size")
    size = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
    if not 1 <= size <= _MAX_CHUNK_SIZE:
        raise RtmpError(f"chunk size {size} out of range")
    return size


def chunks(csid: int, type_id: int, payload: bytes, *, stream_id: int = 0, timestamp: int = 0,
           chunk_size: int = 128) -> bytes:
    """One message as chunks: a type 0 header, then type 3 headers between ``chunk_size`` pieces."""
    assert 2 <= csid < 64 and timestamp < _EXTENDED
    out = bytearray([csid]) + timestamp.to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    out += bytes([type_id]) + struct.pack("<I", stream_id)
    for start in range(0, max(len(payload), 1), chunk_size):
        if start:
            out.append(0xC0 | csid)
        out += payload[start:start + chunk_size]
    return bytes(out)


def control(type_id: int, value: int, *extra: int) -> bytes:
    """A protocol control message (chunk stream 2, message stream 0): a 32-bit value and extra bytes."""
    return chunks(2, type_id, struct.pack(">I", value) + bytes(extra))


def stream_begin(stream_id: int) -> bytes:
    """User Control "Stream Begin": the server is ready for the stream's messages."""
    return chunks(2, USER_CONTROL, struct.pack(">HI", 0, stream_id))


# -- AMF0 ------------------------------------------------------------------------------------
class _Ecma(dict[str, Any]):
    """An AMF0 ECMA array (what onMetaData holds), kept apart from an object for encoding."""


_OBJECT_END = b"\x00\x00\x09"


def amf0_decode(data: bytes) -> list[Any]:
    """Every AMF0 value of ``data`` in order: numbers, booleans, strings, None, dicts, lists."""
    values, at = [], 0
    while at < len(data):
        value, at = _decode(data, at, 0)
        values.append(value)
    return values


def _decode(data: bytes, at: int, depth: int) -> tuple[Any, int]:
    if depth > 16:
        raise RtmpError("AMF0 values nested too deep")
    try:
        marker = data[at]
        at += 1
        if marker == 0x00:
            return struct.unpack_from(">d", data, at)[0], at + 8
        if marker == 0x01:
            return data[at] != 0, at + 1
        if marker in (0x02, 0x0C):  # string, long string
            width = 2 if marker == 0x02 else 4
            size = int.from_bytes(data[at:at + width], "big")
            text = data[at + width:at + width + size]
            if len(text) != size:
                raise RtmpError("AMF0 string runs past the message")
            return text.decode("utf-8", "replace"), at + width + size
        if marker in (0x05, 0x06):  # null, undefined
            return None, at
        if marker in (0x03, 0x08):  # object, ECMA array (a count, then the same pairs)
            result: dict[str, Any] = {} if marker == 0x03 else _Ecma()
            at += 4 if marker == 0x08 else 0
            while data[at:at + 3] != _OBJECT_END:
                if at + 3 > len(data):
                    raise RtmpError("AMF0 object without its end marker")
                size = int.from_bytes(data[at:at + 2], "big")
                key = data[at + 2:at + 2 + size].decode("utf-8", "replace")
                result[key], at = _decode(data, at + 2 + size, depth + 1)
            return result, at + 3
        if marker == 0x0A:  # strict array
            count = struct.unpack_from(">I", data, at)[0]
            at += 4
            items = []
            for _ in range(count):
                item, at = _decode(data, at, depth + 1)
                items.append(item)
            return items, at
        if marker == 0x0B:  # date: milliseconds and a time zone nobody uses
            return struct.unpack_from(">d", data, at)[0], at + 10
    except (IndexError, struct.error):
        raise RtmpError("AMF0 value runs past the message") from None
    raise RtmpError(f"AMF0 type marker {marker:#04x} is not supported")


def amf0_encode(*values: Any) -> bytes:
    out = bytearray()
    for value in values:
        if value is None:
            out.append(0x05)
        elif isinstance(value, bool):
            out += bytes([0x01, value])
        elif isinstance(value, int | float):
            out += b"\x00" + struct.pack(">d", value)
        elif isinstance(value, str):
            raw = value.encode()
            out += b"\x02" + len(raw).to_bytes(2, "big") + raw
        elif isinstance(value, dict):
            out += b"\x08" + len(value).to_bytes(4, "big") if isinstance(value, _Ecma) else b"\x03"
            for key, item in value.items():
                raw = key.encode()
                out += len(raw).to_bytes(2, "big") + raw + amf0_encode(item)
            out += _OBJECT_END
        else:
            raise TypeError(f"no AMF0 form for {type(value).__name__}")
    return bytes(out)


def command(name: str, transaction: float, *args: Any, stream_id: int = 0, chunk_size: int = 128) -> bytes:
    """An AMF0 command message (chunk stream 3 for the connection, 5 for a message stream)."""
    return chunks(5 if stream_id else 3, COMMAND_AMF0, amf0_encode(name, transaction, *args),
                  stream_id=stream_id, chunk_size=chunk_size)


def status(code: str, description: str, *, level: str = "status") -> dict[str, Any]:
    """An ``onStatus`` info object (NetStream.Publish.Start, NetStream.Publish.BadName …)."""
    return {"level": level, "code": code, "description": description}


def finite_number(value: Any) -> int | None:
    """An onMetaData number as an int, or None when it is absent, not a number, not finite or not above 0
    (encoders write 0 for what they do not know, such as the bitrate of a quality-based encode)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    return int(round(value))


def metadata_object(values: list[Any]) -> dict[str, Any] | None:
    """The onMetaData object of a data message (``@setDataFrame``-wrapped as encoders send it, or bare)."""
    if values[:1] == ["@setDataFrame"]:
        values = values[1:]
    if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
        return values[1]
    return None
