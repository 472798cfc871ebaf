"""The player's ID3 reader (``ivs_widgets/widgets/id3.js``) under Node, on tags built here byte by byte.

The bytes come from the stream, so the reader must take any of them: wrong sizes, truncated tags,
unknown encodings give fewer frames, never an exception. Node is required in CI; elsewhere these
tests skip without it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from typing import Any

import pytest

from ivs_widgets.widgets.player import MODULES

RUNNER = """
import { readFileSync } from "node:fs";
const { id3TextFrames } = await import(process.argv[1]);
const inputs = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(inputs.map((hex) => {
  try { return id3TextFrames(Uint8Array.from(Buffer.from(hex, "hex"))); } catch (e) { return `threw ${e}`; }
})));
"""


def syncsafe(n: int) -> bytes:
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def frame(kind: bytes, body: bytes, version: int = 4) -> bytes:
    size = syncsafe(len(body)) if version == 4 else struct.pack(">I", len(body))
    return kind + size + b"\x00\x00" + body


def tag(*frames: bytes, version: int = 4, padding: int = 0, size: int | None = None) -> bytes:
    body = b"".join(frames) + bytes(padding)
    return b"ID3" + bytes([version, 0, 0]) + syncsafe(len(body) if size is None else size) + body


def txxx(text: str, description: str = "", version: int = 4) -> bytes:
    return frame(b"TXXX", b"\x03" + description.encode() + b"\x00" + text.encode(), version)


def read_frames(*inputs: bytes) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is missing in CI")
        pytest.skip("node not installed")
    answer = subprocess.run([node, "--input-type=module", "-e", RUNNER, MODULES["id3"].as_uri()], input=json.dumps([i.hex() for i in inputs]),
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(answer.stdout)


def test_putmetadatas_tag_gives_its_text() -> None:
    quiz = '{"question": "2 + 2?", "answers": ["3", "4"]} <script>ü✓'
    assert read_frames(tag(txxx(quiz))) == [[{"description": "", "text": quiz}]]


def test_every_text_frame_of_every_tag_and_nothing_else() -> None:
    priv = frame(b"PRIV", b"com.apple.streaming.transportStreamTimestamp\x00" + bytes(8))
    two_tags = tag(priv, txxx("one", "first"), padding=16) + tag(txxx("two"))
    assert read_frames(two_tags) == [[{"description": "first", "text": "one"}, {"description": "", "text": "two"}]]


def test_id3v23_and_its_other_encodings() -> None:
    utf16 = frame(b"TXXX", b"\x01" + "quiz".encode("utf-16") + b"\x00\x00" + "é?".encode("utf-16"), version=3)
    latin1 = frame(b"TXXX", b"\x00d\x00caf\xe9", version=3)
    utf16be = frame(b"TXXX", b"\x02" + "d".encode("utf-16-be") + b"\x00\x00" + "ok".encode("utf-16-be"), version=3)
    assert read_frames(tag(utf16, latin1, utf16be, version=3)) == [[
        {"description": "quiz", "text": "é?"}, {"description": "d", "text": "café"}, {"description": "d", "text": "ok"}]]


@pytest.mark.parametrize("data", [
    b"", b"ID3", b"not an id3 tag at all", bytes(64),
    tag(txxx("cut"))[:-2],  # a tag shorter than its size says: what is there is read
    tag(txxx("x"), size=2**28 - 1),
    tag(frame(b"TXXX", b"\x09weird encoding\x00x")),
    tag(frame(b"TXXX", b"")),
    tag(b"TXXX" + syncsafe(2**27) + b"\x00\x00\x03\x00huge"),
    b"ID3\x04\x00\x40" + syncsafe(20) + syncsafe(2**27) + bytes(16),  # an extended header past the end
])
def test_damaged_bytes_give_fewer_frames_never_an_error(data: bytes) -> None:
    [frames] = read_frames(data)
    assert isinstance(frames, list), frames
    assert all(set(f) == {"description", "text"} for f in frames)
    if data.startswith(tag(txxx("cut"))[:12]):
        assert frames in ([], [{"description": "", "text": "c"}])
