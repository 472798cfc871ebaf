"""The few things the packager reads in ffmpeg's fragmented MP4 (ISO BMFF) output: each track's
timescale (init segment), each fragment's start and duration per track (media segment), and where
the first ``moof`` starts, so ``emsg`` boxes can go before it."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_CONTAINERS = {b"moov", b"trak", b"mdia", b"moof", b"traf"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """The boxes of ``data[start:end]`` at one level: (type, offset, size) each. Stops at a box whose
    size does not fit (a truncated tail) rather than reading past it."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, offset, size
        offset += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(payload offset, payload end) of every box along ``path`` (containers' children searched)."""
    for kind, offset, size in boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                yield offset + 8, offset + size
            elif kind in _CONTAINERS:
                yield from _find(data, path[1:], offset + 8, offset + size)


def track_timescales(init: bytes) -> dict[int, int]:
    """track_ID → media timescale (ticks a second), from the init segment's ``moov``."""
    scales = {}
    for trak_start, trak_end in _find(init, [b"moov", b"trak"]):
        tkhd = next(_find(init, [b"tkhd"], trak_start, trak_end))[0]
        mdhd = next(_find(init, [b"mdia", b"mdhd"], trak_start, trak_end))[0]
        tkhd_version, mdhd_version = init[tkhd], init[mdhd]
        track_id = struct.unpack_from(">I", init, tkhd + (20 if tkhd_version == 1 else 12))[0]
        scales[track_id] = struct.unpack_from(">I", init, mdhd + (20 if mdhd_version == 1 else 12))[0]
    return scales


@dataclass(frozen=True)
class Fragment:
    track_id: int
    #: Decode time of the first sample (``tfdt``) and the samples' total duration, in the track's ticks.
    start: int
    duration: int


def fragments(segment: bytes) -> list[Fragment]:
    """Every track fragment of a media segment, in order."""
    found = []
    for traf_start, traf_end in _find(segment, [b"moof", b"traf"]):
        tfhd = next(_find(segment, [b"tfhd"], traf_start, traf_end))[0]
        flags = int.from_bytes(segment[tfhd + 1:tfhd + 4], "big")
        track_id = struct.unpack_from(">I", segment, tfhd + 4)[0]
        at = tfhd + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
        default_duration = struct.unpack_from(">I", segment, at)[0] if flags & 0x08 else 0
        tfdt = next(_find(segment, [b"tfdt"], traf_start, traf_end))[0]
        start = struct.unpack_from(">Q" if segment[tfdt] == 1 else ">I", segment, tfdt + 4)[0]
        found.append(Fragment(track_id, start, sum(_run_durations(segment, traf_start, traf_end, default_duration))))
    return found


def _run_durations(segment: bytes, start: int, end: int, default: int) -> Iterator[int]:
    for trun, _ in _find(segment, [b"trun"], start, end):
        flags = int.from_bytes(segment[trun + 1:trun + 4], "big")
        count = struct.unpack_from(">I", segment, trun + 4)[0]
        at = trun + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
        fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
        if 0x100 not in fields:
            yield default * count
            continue
        for _ in range(count):
            yield struct.unpack_from(">I", segment, at)[0]
            at += 4 * len(fields)


def first_moof(segment: bytes) -> int:
    """Where the first ``moof`` starts (what precedes it, ``styp`` or ``sidx``, stays in front)."""
    return next((offset for kind, offset, _ in boxes(segment) if kind == b"moof"), len(segment))
