"""Timed metadata on the wire: PutMetadata's text as an ID3 tag in an ``emsg`` box of a CMAF segment.

This is the contract between the sandbox's packager and players: IVS carries timed metadata as ID3,
and in fragmented MP4 ID3 travels in an ``emsg`` box (AOMedia's "ID3 in emsg": version 1,
``scheme_id_uri`` ``https://aomedia.org/emsg/ID3``, ``value`` empty) placed before the segment's
first ``moof``. hls.js surfaces those as ``FRAG_PARSING_METADATA`` samples and metadata cues at
``presentation_time / timescale`` on the media timeline. The tag holds one ``TXXX`` frame, empty
description, the metadata as its UTF-8 value: what the IVS Player reports as a TEXT_METADATA_CUE.
"""

from __future__ import annotations

import struct

#: The scheme of an emsg that carries an ID3 tag (https://aomediacodec.github.io/id3-emsg/).
ID3_SCHEME = "https://aomedia.org/emsg/ID3"
#: ``event_duration`` when the event has none (ISO/IEC 23009-1: "unknown"): a cue is a point in time.
UNKNOWN_DURATION = 0xFFFFFFFF
_ID3_VERSION = b"\x04\x00"  # ID3v2.4.0
_UTF8 = b"\x03"  # ID3v2.4 text encoding byte


def syncsafe(n: int) -> bytes:
    """ID3v2's 28-bit size: four bytes of seven bits each (no byte looks like an MPEG sync)."""
    if not 0 <= n < 1 << 28:
        raise ValueError(f"ID3 size out of range: {n}")
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3_tag(text: str) -> bytes:
    """An ID3v2.4 tag with one ``TXXX`` frame: empty description, ``text`` as its UTF-8 value."""
    body = _UTF8 + b"\x00" + text.encode()  # encoding, description "" and its terminator, value
    frame = b"TXXX" + syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3" + _ID3_VERSION + b"\x00" + syncsafe(len(frame)) + frame


def emsg_box(message_data: bytes, *, presentation_time: int, timescale: int, event_id: int,
             event_duration: int = UNKNOWN_DURATION, scheme_id_uri: str = ID3_SCHEME, value: str = "") -> bytes:
    """A version 1 ``emsg`` box: ``presentation_time`` in ``timescale`` units on the media timeline
    (the same clock as the segments' ``tfdt``), ``event_id`` distinct per event of a stream."""
    body = struct.pack(">B3xIQII", 1, timescale, presentation_time, event_duration, event_id)
    body += scheme_id_uri.encode() + b"\x00" + value.encode() + b"\x00" + message_data
    return struct.pack(">I4s", 8 + len(body), b"emsg") + body
