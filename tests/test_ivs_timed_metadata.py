"""The timed-metadata wire format players rely on: an ID3v2.4 TXXX tag inside a version 1 emsg box."""

from __future__ import annotations

import pytest
from mp4util import id3_frames, parse_emsg, top_boxes, txxx_text

from ivs_widgets.sandbox.ivs import timed_metadata as tm


def test_id3_tag_is_one_utf8_txxx_frame_with_empty_description() -> None:
    tag = tm.id3_tag('{"question": "2 + 2?", "emoji": "🎉"}')
    assert txxx_text(tag) == '{"question": "2 + 2?", "emoji": "🎉"}'
    assert [frame for frame, _ in id3_frames(tag)] == ["TXXX"]


def test_id3_sizes_are_syncsafe_for_the_largest_metadata() -> None:
    text = "é" * 512  # PutMetadata's 1 KB limit, in two-byte characters: sizes above 127 need syncsafe bytes
    assert txxx_text(tm.id3_tag(text)) == text
    assert tm.syncsafe(0x80) == b"\x00\x00\x01\x00"
    with pytest.raises(ValueError):
        tm.syncsafe(1 << 28)


def test_emsg_box_carries_the_tag_at_its_presentation_time() -> None:
    tag = tm.id3_tag("hello")
    box = tm.emsg_box(tag, presentation_time=123_456_789_012, timescale=90_000, event_id=7)
    [(kind, payload)] = top_boxes(box)
    assert kind == b"emsg"
    emsg = parse_emsg(payload)
    assert (emsg.version, emsg.scheme_id_uri, emsg.value) == (1, "https://aomedia.org/emsg/ID3", "")
    assert (emsg.timescale, emsg.presentation_time, emsg.event_id) == (90_000, 123_456_789_012, 7)
    assert emsg.event_duration == 0xFFFFFFFF  # a cue is a point: duration unknown
    assert emsg.message_data == tag and txxx_text(emsg.message_data) == "hello"
    assert emsg.seconds == pytest.approx(1_371_742.1, abs=0.01)
