"""SEND_MESSAGE over raw sockets: fan-out, frame fields, limits, and ERRORs that reach only the requester."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from wsutil import Frame, barrier, join, next_frame, next_of, say, send

from ivs_widgets.sandbox import Sandbox

ID = re.compile(r"[A-Za-z0-9]{12}")
SEND_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")


def _epoch_ns(send_time: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC SendTime, parsed without our own code."""
    match = SEND_TIME.fullmatch(send_time)
    assert match, f"SendTime {send_time!r} is not RFC 3339 UTC with up to nine fractional digits"
    whole = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 1_000_000_000 + int((match[2] or "").ljust(9, "0"))


async def test_message_reaches_everyone_in_the_room_including_the_sender(sandbox: Sandbox,
                                                                         room: dict[str, Any]) -> None:
    before = time.time_ns()
    async with await join(sandbox, room["arn"], "alice", attributes={"displayName": "Alice"}) as alice, \
            await join(sandbox, room["arn"], "bob") as bob:
        await say(alice, "hello", "req-1", Attributes={"color": "red"})
        frames = [await next_of(alice, "MESSAGE"), await next_of(bob, "MESSAGE")]
    assert frames[0] == frames[1]
    message = frames[0]
    assert set(message) == {"Type", "Id", "RequestId", "Attributes", "Content", "SendTime", "Sender"}
    assert message["Content"] == "hello"
    assert message["RequestId"] == "req-1"
    assert message["Attributes"] == {"color": "red"}
    assert message["Sender"] == {"UserId": "alice", "Attributes": {"displayName": "Alice"}}
    assert ID.fullmatch(message["Id"])
    assert before <= _epoch_ns(message["SendTime"]) <= time.time_ns()


async def test_absent_optional_fields_are_sent_empty_not_left_out(sandbox: Sandbox, room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice") as alice:
        await send(alice, Action="SEND_MESSAGE", Content="hi")
        message = await next_of(alice, "MESSAGE")
    assert message["RequestId"] == ""
    assert message["Attributes"] is None
    assert message["Sender"] == {"UserId": "alice", "Attributes": {}}


async def test_every_message_gets_a_fresh_id_and_a_nanosecond_send_time(sandbox: Sandbox,
                                                                        room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"]) as ws:
        messages = []
        for n in range(5):
            await say(ws, f"m{n}")
            messages.append(await next_of(ws, "MESSAGE"))
    assert len({m["Id"] for m in messages}) == 5
    times = [_epoch_ns(m["SendTime"]) for m in messages]
    assert times == sorted(times)
    # Trailing zeros are trimmed, so one stamp may be short; five in a row only with microsecond clocks.
    assert max(len(SEND_TIME.fullmatch(m["SendTime"])[2] or "") for m in messages) > 6


async def test_lowercase_keys_are_accepted(sandbox: Sandbox, room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"]) as ws:
        await send(ws, action="SEND_MESSAGE", requestid="low", content="quiet", attributes={"k": "v"})
        message = await next_of(ws, "MESSAGE")
    assert (message["Content"], message["RequestId"], message["Attributes"]) == ("quiet", "low", {"k": "v"})


async def test_rooms_are_isolated(sandbox: Sandbox, ivschat: Any) -> None:
    room_a = ivschat.create_room(name="a")["arn"]
    room_b = ivschat.create_room(name="b")["arn"]
    async with await join(sandbox, room_a, "alice") as alice, await join(sandbox, room_b, "bob") as bob:
        await say(alice, "only in a")
        assert (await next_of(alice, "MESSAGE"))["Content"] == "only in a"
        await barrier(ivschat, room_b, bob)


# -- limits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("content, accepted", [
    ("abcd", True),
    ("abcde", False),
    ("👍👍👍👍", True),            # 4 code points, 8 UTF-16 units
    ("👍👍👍👍👍", False),
    ("e\u0301e\u0301", True),      # 2 visible characters, 4 code points
    ("e\u0301e\u0301a", False),
], ids=["ascii-at-limit", "ascii-over", "emoji-at-limit", "emoji-over", "combining-at-limit", "combining-over"])
async def test_content_length_is_counted_in_code_points(sandbox: Sandbox, ivschat: Any, content: str,
                                                        accepted: bool) -> None:
    arn = ivschat.create_room(maximumMessageLength=4)["arn"]
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, content, "len")
        frame = await next_frame(alice)
        if accepted:
            assert (frame["Type"], frame["Content"]) == ("MESSAGE", content)
            assert (await next_of(bob, "MESSAGE"))["Content"] == content
        else:
            assert (frame["Type"], frame["ErrorCode"], frame["RequestId"]) == ("ERROR", 400, "len")
            await barrier(ivschat, arn, bob)


@pytest.mark.parametrize("attributes, code", [
    ({"k": "v" * 1023}, None),          # 1 + 1023 bytes: exactly 1 KB
    ({"k": "v" * 1024}, 413),
    ({"k": "é" * 512}, 413),            # 1 + 1024 bytes in UTF-8, 513 characters
    ({"k": 1}, 400),
    ({"k": None}, 400),
    ({"k": ["v"]}, 400),
], ids=["1KB", "over-1KB", "over-1KB-in-utf8", "number", "null", "list"])
async def test_message_attributes_must_be_strings_within_1kb(sandbox: Sandbox, room: dict[str, Any],
                                                             attributes: dict[str, Any], code: int | None) -> None:
    async with await join(sandbox, room["arn"]) as ws:
        await say(ws, "hi", "attrs", Attributes=attributes)
        frame = await next_frame(ws)
    if code is None:
        assert (frame["Type"], frame["Attributes"]) == ("MESSAGE", attributes)
    else:
        assert (frame["Type"], frame["ErrorCode"], frame["RequestId"]) == ("ERROR", code, "attrs")


async def test_sending_without_the_capability_is_refused_with_403(sandbox: Sandbox, ivschat: Any,
                                                                 room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "viewer", capabilities=()) as viewer, \
            await join(sandbox, room["arn"], "bob") as bob:
        await say(viewer, "let me in", "cap")
        error = await next_of(viewer, "ERROR")
        assert (error["ErrorCode"], error["RequestId"]) == (403, "cap")
        await barrier(ivschat, room["arn"], viewer, bob)


async def test_room_rate_limit_counts_every_sender(sandbox: Sandbox, ivschat: Any) -> None:
    arn = ivschat.create_room(maximumMessageRatePerSecond=2)["arn"]
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, "one")
        await say(alice, "two")
        assert [(await next_of(alice, "MESSAGE"))["Content"] for _ in range(2)] == ["one", "two"]
        await say(bob, "three", "too-fast")
        received = [await next_frame(bob) for _ in range(3)]
        assert [f["Content"] for f in received[:2]] == ["one", "two"]
        assert (received[2]["Type"], received[2]["ErrorCode"], received[2]["RequestId"]) == ("ERROR", 429, "too-fast")
        await barrier(ivschat, arn, alice, bob)


async def test_update_room_limits_apply_at_once_to_connected_clients(sandbox: Sandbox, ivschat: Any,
                                                                     room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"]) as ws:
        await say(ws, "a long first message")
        assert (await next_of(ws, "MESSAGE"))["Content"] == "a long first message"
        await asyncio.to_thread(ivschat.update_room, identifier=room["arn"], maximumMessageLength=3,
                                maximumMessageRatePerSecond=1)
        await say(ws, "abcd", "long")
        assert ((await next_of(ws, "ERROR"))["ErrorCode"]) == 400
        # The first message, sent before the update, already fills the new one-per-second window.
        await say(ws, "abc", "fast")
        assert ((await next_of(ws, "ERROR"))["ErrorCode"]) == 429


# -- errors ----------------------------------------------------------------------------------
BIG = json.dumps({"Action": "SEND_MESSAGE", "RequestId": "big", "Content": "x" * 100_000})
#: 100 KB on the wire but only about 34 000 characters: the frame limit is in bytes.
BIG_MULTIBYTE = json.dumps({"Action": "SEND_MESSAGE", "RequestId": "big-€", "Content": "€" * 34_000},
                           ensure_ascii=False)

#: (bad frame, ErrorCode, RequestId the ERROR must echo)
BAD_INPUT: dict[str, tuple[str | bytes, int, str]] = {
    "not-json": ("hello?", 400, ""),
    "binary": (b'{"Action":"SEND_MESSAGE","Content":"hi"}', 400, ""),
    "json-array": ('["SEND_MESSAGE","hi"]', 400, ""),
    "json-string": ('"hi"', 400, ""),
    "no-action": ('{"RequestId":"r0","Content":"hi"}', 400, "r0"),
    "unknown-action": ('{"Action":"SHOUT","RequestId":"r1","Content":"hi"}', 400, "r1"),
    "missing-content": ('{"Action":"SEND_MESSAGE","RequestId":"r2"}', 400, "r2"),
    "empty-content": ('{"Action":"SEND_MESSAGE","RequestId":"r3","Content":""}', 400, "r3"),
    "missing-id": ('{"Action":"DELETE_MESSAGE","RequestId":"r4","Reason":"x"}', 400, "r4"),
    "missing-user-id": ('{"Action":"DISCONNECT_USER","RequestId":"r5"}', 400, "r5"),
    "content-number": ('{"Action":"SEND_MESSAGE","RequestId":"r6","Content":42}', 400, "r6"),
    "attributes-string": ('{"Action":"SEND_MESSAGE","RequestId":"r7","Content":"hi","Attributes":"x"}', 400, "r7"),
    "id-number": ('{"Action":"DELETE_MESSAGE","RequestId":"r8","Id":7}', 400, "r8"),
    "user-id-object": ('{"Action":"DISCONNECT_USER","RequestId":"r9","UserId":{}}', 400, "r9"),
    "request-id-number": ('{"Action":"SEND_MESSAGE","RequestId":5,"Content":"hi"}', 400, ""),
    "100KB-frame": (BIG, 413, "big"),
    "100KB-frame-multibyte": (BIG_MULTIBYTE, 413, "big-€"),
}


async def _expect_error(ws: Any, code: int, request_id: str) -> Frame:
    error = await next_of(ws, "ERROR")
    assert set(error) == {"Type", "Id", "RequestId", "ErrorCode", "ErrorMessage"}
    assert (error["ErrorCode"], error["RequestId"]) == (code, request_id)
    assert ID.fullmatch(error["Id"]) and error["ErrorMessage"]
    return error


@pytest.mark.parametrize("bad", BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_gets_an_error_only_on_that_connection(sandbox: Sandbox, ivschat: Any,
                                                               room: dict[str, Any],
                                                               bad: tuple[str | bytes, int, str]) -> None:
    frame, code, request_id = bad
    async with await join(sandbox, room["arn"], "alice") as alice, await join(sandbox, room["arn"], "bob") as bob:
        await alice.send(frame)
        await _expect_error(alice, code, request_id)
        await say(alice, "still here", "after")
        assert (await next_of(alice, "MESSAGE"))["RequestId"] == "after"
        assert (await next_of(bob, "MESSAGE"))["Content"] == "still here"
        await barrier(ivschat, room["arn"], alice, bob)


async def test_bystander_sees_only_valid_messages_once_and_in_order(sandbox: Sandbox, ivschat: Any) -> None:
    arn = ivschat.create_room(maximumMessageRatePerSecond=100)["arn"]  # more valid messages than the default rate
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        error_ids, message_ids = set(), set()
        for n, (frame, code, request_id) in enumerate(BAD_INPUT.values()):
            await alice.send(frame)
            error_ids.add((await _expect_error(alice, code, request_id))["Id"])
            await say(alice, f"valid {n}", f"ok-{n}")
            message_ids.add((await next_of(alice, "MESSAGE"))["Id"])
        seen = [await next_of(bob, "MESSAGE") for _ in BAD_INPUT]
        assert [m["Content"] for m in seen] == [f"valid {n}" for n in range(len(BAD_INPUT))]
        assert {m["Id"] for m in seen} == message_ids
        # Every ERROR has its own id, never one a MESSAGE carries (clients de-duplicate by Id).
        assert len(error_ids) == len(BAD_INPUT) and not error_ids & message_ids
        await barrier(ivschat, arn, alice, bob)
