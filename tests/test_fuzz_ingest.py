"""Generated RTMP peers against the ingest: whatever an encoder (or anything else) sends, its
connection ends with a clear log line or a refusal, never an exception out of the ingest or a hang.

Each input is a whole connection run through ``RtmpIngest``'s connection handler over in-memory
streams: a handshake, then chunk streams of commands with awkward AMF0 arguments, metadata and
media messages, corrupted copies of good streams, and plain junk. The packager is a stand-in (no
ffmpeg per example); the one channel's key is among the keys tried, so publishing succeeds too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from typing import Any

import pytest
from fuzzutil import Junk, fuzz_settings, scale, seeds
from hypothesis import given
from hypothesis import strategies as st

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.ivs import ingest, rtmp
from ivs_widgets.sandbox.ivs.rtmp import amf0_encode, chunks

CONNECTIONS = 400 * scale()
BATCH = 20
COMMANDS = ("connect", "releaseStream", "FCPublish", "createStream", "publish", "FCUnpublish", "deleteStream",
            "closeStream", "_checkbw", "play", "")


class FakePackager:
    """Stands in for ffmpeg: takes what the ingest hands over."""

    def __init__(self, stream: Any, **settings: Any) -> None:
        self.stream, self.segments, self.live_point_ms = stream, [], 0

    async def start(self, *, audio: bool = True) -> None: ...

    async def write(self, data: bytes) -> None: ...

    def media_arrived(self, timestamp_ms: int) -> None:
        self.live_point_ms = timestamp_ms

    def put_metadata(self, text: str) -> None: ...

    async def stop(self) -> None: ...


class MemoryWriter:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.transport = self

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1935)

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None: ...

    def abort(self) -> None: ...


def amf_value(junk: Junk, depth: int = 2) -> Any:
    roll = junk.random.random()
    if depth <= 0 or roll < 0.6:
        return junk.pick([None, True, 0.0, float(junk.integer(-2**40, 2**40)), float("nan"), junk.text(0, 30)])
    if roll < 0.8:
        return {junk.text(0, 6): amf_value(junk, depth - 1) for _ in range(junk.integer(0, 4))}
    return rtmp._Ecma({k: amf_value(junk, depth - 1) for k in ("width", "height", "framerate", "videodatarate",
                                                               "audiocodecid", "encoder", junk.text(0, 5))})


def command_stream(junk: Junk, key: str) -> bytes:
    """A plausible publishing session with awkward arguments, metadata and media messages."""
    out = bytearray()
    for _ in range(junk.integer(1, 8)):
        name = junk.pick(COMMANDS)
        args: list[Any] = [amf_value(junk) for _ in range(junk.integer(0, 3))]
        if name == "connect" and junk.chance(0.7):
            args = [{"app": junk.pick(["app", "app/", "live", junk.text(0, 5)])}]
        if name == "publish" and junk.chance(0.7):
            args = [None, junk.pick([key, key + "?x=1", junk.text(0, 40)]), "live"]
        out += chunks(3, rtmp.COMMAND_AMF0, amf0_encode(name, junk.pick([1.0, 0.0, junk.text(0, 3)]), *args),
                      stream_id=junk.pick([0, 1]))
    for _ in range(junk.integer(0, 6)):
        kind = junk.pick([rtmp.AUDIO, rtmp.VIDEO, rtmp.DATA_AMF0])
        if kind == rtmp.DATA_AMF0:
            body = amf0_encode("@setDataFrame", "onMetaData", amf_value(junk))
        else:
            body = bytes(junk.integer(0, 255) for _ in range(junk.integer(0, 40)))
        out += chunks(4, kind, body, stream_id=1, timestamp=junk.integer(0, 0xFFFFFE))
    return bytes(out)


def junk_chunks(junk: Junk, key: str) -> bytes:
    """Random header bytes, sizes at their limits, control messages with odd values."""
    out = bytearray()
    for _ in range(junk.integer(1, 10)):
        roll = junk.random.random()
        if roll < 0.3:
            out += rtmp.control(junk.pick([rtmp.SET_CHUNK_SIZE, rtmp.WINDOW_ACK_SIZE, rtmp.ABORT, 7]),
                                junk.pick([0, 1, 127, 0x7FFFFFFF, 0xFFFFFFFF]))
        elif roll < 0.6:
            out += bytes([junk.integer(0, 255)]) + struct.pack(">I", junk.integer(0, 2**32 - 1)) * 3
        else:
            out += bytes(junk.integer(0, 255) for _ in range(junk.integer(0, 64)))
    return bytes(out)


def corrupted(junk: Junk, key: str) -> bytes:
    good = bytearray(command_stream(junk, key))
    for _ in range(junk.integer(1, 5)):
        if good:
            good[junk.integer(0, len(good) - 1)] = junk.integer(0, 255)
    return bytes(good[:junk.integer(0, len(good))]) if junk.chance(0.3) else bytes(good)


KINDS = (command_stream, junk_chunks, corrupted)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(ingest, "HlsPackager", FakePackager)
    monkeypatch.setattr(ingest, "IDLE_SECONDS", 1.0)
    with Sandbox() as running:
        yield running


def test_generated_rtmp_peers_never_break_the_ingest(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    channel = sandbox.client("ivs").create_channel(name="fuzz")
    key, arn = channel["streamKey"]["value"], channel["channel"]["arn"]
    handshake = b"\x03" + bytes(1536) + bytes(1536)
    ran = 0

    async def connection(data: bytes) -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        await asyncio.wait_for(sandbox.ingest._connected(reader, MemoryWriter()), 10)  # type: ignore[arg-type]

    @fuzz_settings(max_examples=math.ceil(CONNECTIONS / BATCH))
    @given(st.lists(seeds(KINDS), min_size=BATCH, max_size=BATCH))
    def play(batch: list[tuple[Any, int]]) -> None:
        nonlocal ran
        for kind, seed in batch:
            data = kind(Junk(seed), key)
            prefix = handshake if seed % 10 else bytes(Junk(seed).integer(0, 255) for _ in range(seed % 3000))
            sandbox.run(connection(prefix + data))
            ran += 1
            assert sandbox.streams.live(arn) is None, (kind, seed)  # every connection's stream ended with it

    play()
    assert ran >= CONNECTIONS
    assert len(sandbox.streams.sessions(arn)) > CONNECTIONS / 20  # publishing got through, often    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
