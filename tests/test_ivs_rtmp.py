"""The RTMP reader the ingest stands on: chunk headers of every format, extended timestamps, chunk
sizes, AMF0, the handshake, and the bounds that close a misbehaving peer; and what an encoder's
headers say of its stream (GetStreamSession's ingest configuration)."""

from __future__ import annotations

import struct

import pytest

from ivs_widgets.sandbox.ivs import flv, rtmp
from ivs_widgets.sandbox.ivs.rtmp import ChunkReader, Message, RtmpError


def header(fmt: int, csid: int, timestamp: int | None = None, length: int | None = None, type_id: int = 9,
           stream_id: int = 1) -> bytes:
    out = bytes([fmt << 6 | csid])
    if fmt <= 2:
        assert timestamp is not None
        out += min(timestamp, 0xFFFFFF).to_bytes(3, "big")
    if fmt <= 1:
        assert length is not None
        out += length.to_bytes(3, "big") + bytes([type_id])
    if fmt == 0:
        out += struct.pack("<I", stream_id)
    if timestamp is not None and timestamp >= 0xFFFFFF:
        out += struct.pack(">I", timestamp)
    return out


def test_a_message_split_into_chunks_arrives_whole_even_byte_by_byte() -> None:
    payload = bytes(range(256)) + b"tail"
    data = header(0, 4, 1000, len(payload)) + payload[:128] + header(3, 4) + payload[128:256] + header(3, 4) \
        + payload[256:]
    reader = ChunkReader()
    messages = [m for byte in data for m in reader.feed(bytes([byte]))]
    assert messages == [Message(9, 1, 1000, payload)]


def test_header_formats_carry_deltas_and_a_bare_header_repeats_the_last_delta() -> None:
    reader = ChunkReader()
    data = header(0, 6, 100, 2, type_id=8) + b"aa" + header(1, 6, 20, 3, type_id=9) + b"bbb" \
        + header(2, 6, 30) + b"ccc" + header(3, 6) + b"ddd"
    assert [(m.type_id, m.timestamp, m.payload) for m in reader.feed(data)] == [
        (8, 100, b"aa"), (9, 120, b"bbb"), (9, 150, b"ccc"), (9, 180, b"ddd")]


def test_extended_timestamps_also_follow_continuation_headers() -> None:
    payload = bytes(200)
    late = 0x01000000  # past 24 bits: about 4.6 hours into a stream
    data = header(0, 5, late, len(payload)) + payload[:128] + header(3, 5) + struct.pack(">I", late) + payload[128:]
    assert ChunkReader().feed(data) == [Message(9, 1, late, payload)]


def test_set_chunk_size_applies_to_what_follows_and_chunk_streams_interleave() -> None:
    reader = ChunkReader()
    big, small = bytes(300), b"x" * 10
    data = header(0, 2, 0, 4, type_id=rtmp.SET_CHUNK_SIZE, stream_id=0) + struct.pack(">I", 256)
    data += header(0, 6, 0, len(big)) + big[:256] + header(0, 4, 5, len(small), type_id=8) + small
    data += header(3, 6) + big[256:]
    messages = reader.feed(data)
    assert reader.chunk_size == 256
    assert [(m.type_id, len(m.payload)) for m in messages] == [(rtmp.SET_CHUNK_SIZE, 4), (8, 10), (9, 300)]


@pytest.mark.parametrize("data, reason", [
    (header(1, 7, 0, 4) + b"abcd", "starts with a type 1 header"),
    (header(0, 2, 0, 4, type_id=rtmp.SET_CHUNK_SIZE, stream_id=0) + bytes(4), "chunk size 0 out of range"),
    (header(0, 4, 0, 200) + bytes(128) + header(0, 4, 0, 10) + bytes(10), "before the last message ended"),
], ids=["unknown-stream", "chunk-size-zero", "header-mid-message"])
def test_a_broken_chunk_stream_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(RtmpError, match=reason):
        ChunkReader().feed(data)


def test_a_peer_cannot_make_the_reader_buffer_without_bound() -> None:
    reader = ChunkReader()
    reader.feed(header(0, 2, 0, 4, type_id=rtmp.SET_CHUNK_SIZE, stream_id=0) + struct.pack(">I", 1_000_000))
    with pytest.raises(RtmpError, match="unfinished"):
        for csid in range(3, 63):  # 60 chunk streams, each a first 1 MB chunk of a 16 MB message
            reader.feed(header(0, csid, 0, 0xFFFFFF) + bytes(1_000_000))


def test_amf0_round_trips_what_encoders_send() -> None:
    metadata = rtmp._Ecma(width=1280.0, height=720.0, encoder="obs-output module", stereo=True)
    values = ["@setDataFrame", "onMetaData", metadata, None, {"app": "app", "tcUrl": "rtmp://h/app"}]
    decoded = rtmp.amf0_decode(rtmp.amf0_encode(*values))
    assert decoded == values and isinstance(decoded[2], rtmp._Ecma)
    assert rtmp.metadata_object(decoded[:3]) == metadata
    assert rtmp.metadata_object(["onMetaData", metadata]) == metadata
    assert rtmp.metadata_object(["onCuePoint", {}]) is None
    assert rtmp.amf0_decode(b"\x0a\x00\x00\x00\x02\x00" + struct.pack(">d", 1) + b"\x02\x00\x01z") == [[1.0, "z"]]


@pytest.mark.parametrize("data, reason", [
    (b"\x02\x00\x10abc", "runs past"), (b"\x11", "marker 0x11"), (b"\x00\x01", "runs past"),
    (b"\x03" + b"\x00\x01k\x03" * 20, "nested too deep"), (b"\x03\x00\x01k\x05", "end marker"),
], ids=["short-string", "amf3-marker", "short-number", "deep", "unterminated-object"])
def test_bad_amf0_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(RtmpError, match=reason):
        rtmp.amf0_decode(data)


def test_the_handshake_echoes_c1_and_refuses_other_protocols() -> None:
    c1 = bytes(range(256)) * 6
    reply = rtmp.handshake_reply(b"\x03" + c1)
    assert len(reply) == 1 + 2 * rtmp.HANDSHAKE_SIZE and reply[0] == 3 and reply[1 + rtmp.HANDSHAKE_SIZE:] == c1
    with pytest.raises(RtmpError, match="version byte 16"):
        rtmp.handshake_reply(b"\x16" + c1)


def test_chunks_written_for_the_encoder_read_back() -> None:
    payload = rtmp.amf0_encode("_result", 1.0, None, 1)
    written = rtmp.command("_result", 1, None, 1) + rtmp.chunks(3, rtmp.COMMAND_AMF0, payload * 10)
    assert [m.payload for m in ChunkReader().feed(written)] == [payload, payload * 10]


def test_ingest_configuration_from_the_codecs_headers_and_onmetadata() -> None:
    avc_record = bytes([1, 0x64, 0x00, 0x1F, 0xFF])  # version 1, High, level 3.1
    aac_config = bytes([0x12, 0x10])  # AAC LC, 44100 Hz, 2 channels
    metadata = {"width": 1280.0, "height": 720.0, "framerate": 30.0, "videodatarate": 2500.0,
                "audiodatarate": 160.0, "encoder": "obs-output module (libobs version 30.0.0)", "audiosamplerate": 0.0}
    assert flv.video_configuration(metadata, avc_record) == {
        "track": "Track0", "codec": "avc1.64001F", "avcProfile": "High", "profile": "High", "avcLevel": "3.1",
        "level": "3.1", "videoWidth": 1280, "videoHeight": 720, "targetFramerate": 30, "targetBitrate": 2_500_000,
        "encoder": "obs-output module (libobs version 30.0.0)"}
    assert flv.audio_configuration(metadata, aac_config) == {
        "track": "Track0", "codec": "mp4a.40.2", "sampleRate": 44100, "channels": 2, "targetBitrate": 160_000}
    assert flv.audio_configuration({"audiosamplerate": float("nan")}, None) == {"track": "Track0"}
    assert flv.is_video_config(bytes([0x17, 0, 0, 0, 0]) + avc_record)
    assert not flv.is_video_config(bytes([0x17, 1, 0, 0, 0]) + avc_record)  # a frame, not the header
    assert flv.is_audio_config(bytes([0xAF, 0]) + aac_config)
