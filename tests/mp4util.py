"""Readers for what the packager writes, kept apart from the writer so tests check it independently:
``emsg`` boxes (version 0 and 1), ID3v2.4 tags' ``TXXX`` frames, ``tfdt`` times of fMP4 segments."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Emsg:
    version: int
    scheme_id_uri: str
    value: str
    timescale: int
    presentation_time: int
    event_duration: int
    event_id: int
    message_data: bytes

    @property
    def seconds(self) -> float:
        return self.presentation_time / self.timescale


def top_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each top-level box (32-bit sizes: all the packager writes)."""
    found, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        assert size >= 8 and offset + size <= len(data), f"bad box {kind!r} at {offset}"
        found.append((kind, data[offset + 8:offset + size]))
        offset += size
    return found


def _cstring(data: bytes, offset: int) -> tuple[str, int]:
    end = data.index(b"\x00", offset)
    return data[offset:end].decode(), end + 1


def parse_emsg(payload: bytes) -> Emsg:
    version = payload[0]
    if version == 0:
        scheme, at = _cstring(payload, 4)
        value, at = _cstring(payload, at)
        timescale, delta, duration, event_id = struct.unpack_from(">IIII", payload, at)
        return Emsg(0, scheme, value, timescale, delta, duration, event_id, payload[at + 16:])
    timescale, time, duration, event_id = struct.unpack_from(">IQII", payload, 4)
    scheme, at = _cstring(payload, 24)
    value, at = _cstring(payload, at)
    return Emsg(1, scheme, value, timescale, time, duration, event_id, payload[at:])


def _unsync(four: bytes) -> int:
    assert all(b < 0x80 for b in four), "not a syncsafe integer"
    return (four[0] << 21) | (four[1] << 14) | (four[2] << 7) | four[3]


def id3_frames(tag: bytes) -> list[tuple[str, bytes]]:
    """(frame id, frame body) of an ID3v2.4 tag, checking its header."""
    assert tag[:3] == b"ID3" and tag[3:5] == b"\x04\x00", tag[:5]
    size = _unsync(tag[6:10])
    assert len(tag) == 10 + size
    frames, at = [], 10
    while at < len(tag):
        frame_id, frame_size = tag[at:at + 4].decode(), _unsync(tag[at + 4:at + 8])
        frames.append((frame_id, tag[at + 10:at + 10 + frame_size]))
        at += 10 + frame_size
    return frames


def txxx_text(tag: bytes) -> str:
    """The value of the tag's one TXXX frame (UTF-8, empty description), as hls.js reads it."""
    [(frame_id, body)] = id3_frames(tag)
    assert frame_id == "TXXX" and body[:2] == b"\x03\x00", body[:2]
    return body[2:].decode()
