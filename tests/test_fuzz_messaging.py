"""Fuzzing the messaging endpoint: thousands of generated frames over real sockets to a running sandbox.

Each generated frame carries the answer it must get, known by construction (a well-formed chat
message, a moderation request, or one of many ways to be wrong). The properties:

* the connection stays open and gets exactly one answer per frame, in order: its own MESSAGE or
  EVENT, or an ERROR with the documented code (never 500) that echoes the RequestId it could read;
* every frame it receives parses with ``frames.loads``;
* a bystander in the same room receives every accepted message and event exactly once, in order;
* afterwards a plain message still round-trips.

Hypothesis draws a batch of (kind, seed) pairs per example (see fuzzutil); a few rooms (lanes) each
keep one fuzzing connection and one bystander open across all examples, so the run costs sockets per
lane, not per frame. Valid messages are paced to the room's rate limit, so no ERROR 429 is expected.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fuzzutil
import pytest
from fuzzutil import Junk, has_lone_surrogate, nested
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from wsutil import TIMEOUT, join

from ivs_widgets.protocol import frames
from ivs_widgets.protocol.facts import ID_LENGTH, MAX_ATTRIBUTES_BYTES
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.validation import service_model
from ivs_widgets.sandbox.messaging.models import MAX_FRAME_BYTES

#: Frames in the default run (times $IVS_FUZZ_SCALE), over this many rooms in parallel.
FRAMES = 10_000 * fuzzutil.scale()
LANES = 4
BATCH = 40
#: The room's limits: the largest the model allows, so the run is fast and the edges are the real ones.
LIMIT = service_model().shape_for("RoomMaxMessageLength").metadata["max"]
RATE = service_model().shape_for("RoomMaxMessageRatePerSecond").metadata["max"]
REASON_MAX = service_model().shape_for("Reason").metadata["max"]
_ID_CHARACTERS = string.ascii_letters + string.digits
#: The fuzzing connection may send and delete, not disconnect: a well-formed DISCONNECT_USER is a 403.
CAPABILITIES = ("SEND_MESSAGE", "DELETE_MESSAGE")
FUZZER = "fuzzer"
#: Every ErrorCode the messaging endpoint may answer with (docs §2.4); 500 means a sandbox bug.
DOCUMENTED_CODES = {400, 403, 404, 406, 413, 429}
REQUEST_KEYS = ("Action", "RequestId", "Content", "Attributes", "Id", "UserId", "Reason")
ACTIONS = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")
_OMIT = object()  # a member left out of the request


@dataclass(frozen=True)
class Case:
    """A frame to send and the fields its answer must carry (``Type`` always; ERRORs their code)."""

    payload: str | bytes
    answer: dict[str, Any]

    @property
    def delivered(self) -> bool:
        """Whether the frame reaches the whole room (so the bystander must see it)."""
        return self.answer["Type"] != "ERROR"

    @property
    def paced(self) -> bool:
        """Whether the frame counts against the room's message rate."""
        return self.answer["Type"] == "MESSAGE"


# -- building requests -----------------------------------------------------------------------
_KNOWN_KEYS = {key.lower() for key in REQUEST_KEYS}


def _raw(index: int) -> str:
    """A placeholder string whose JSON form is swapped for raw JSON text (values Python cannot hold)."""
    return f"\x00raw{index}\x00"


def encode(junk: Junk, value: Any, *raw: str) -> str:
    """JSON text for ``value`` in some client's style (escaped or raw UTF-8, compact or indented)."""
    result = fuzzutil.dumps(value, ascii_only=junk.chance(), indent=junk.pick((None, None, 0, 2)))
    for index, literal in enumerate(raw):
        result = result.replace(json.dumps(_raw(index)), literal)
    return result


def extras(junk: Junk) -> dict[str, Any]:
    """Members the service ignores: unknown names (any case) holding JSON of any shape."""
    names = (junk.text(1, 10) for _ in range(junk.pick((0, 0, 0, 1, 2))))
    return {name: junk.json(2) for name in names if name.lower() not in _KNOWN_KEYS}


def request(junk: Junk, action: Any, members: dict[str, Any], rid: Any = None) -> tuple[dict[str, Any], str]:
    """A request object (keys in any case, ``_OMIT`` members left out) and the RequestId its answer echoes.

    ``rid`` None draws a RequestId: left out, null, or any text.
    """
    if rid is None:
        rid = junk.pick((_OMIT, None, junk.text(0, 40)))
    wire = extras(junk)
    for key, value in {"Action": action, "RequestId": rid, **members}.items():
        if value is not _OMIT:
            wire[junk.cased(key)] = value
    echoed = rid if isinstance(rid, str) and not has_lone_surrogate(rid) else ""
    return wire, echoed


def _message(content: str, attributes: dict[str, str] | None, rid: str) -> dict[str, Any]:
    return {"Type": "MESSAGE", "RequestId": rid, "Content": content, "Attributes": attributes,
            "Sender": {"UserId": FUZZER, "Attributes": {}}}


def _error(code: int, rid: str = "") -> dict[str, Any]:
    return {"Type": "ERROR", "ErrorCode": code, "RequestId": rid}


def _unit(junk: Junk) -> str:
    return junk.pick(fuzzutil.AWKWARD) if junk.chance() else junk.text(1, 3)


def _repeat(unit: str, length: int) -> str:
    """Exactly ``length`` code points of ``unit`` repeated."""
    return (unit * length)[:length]


def _not_a_string(junk: Junk) -> Any:
    while True:
        value = junk.json(2)
        if value is not None and not isinstance(value, str):
            return value


#: JSON literals no Python value serialises to: beyond float range, non-standard, negative zero.
ODD_LITERALS = ("1e999", "-1e999", "NaN", "Infinity", "-Infinity", "-0", "1E+2", "true", "[]", "{}")


def _unreadable_literal(junk: Junk) -> str:
    """JSON the server cannot read at all, so no RequestId can be echoed: an integer far past Python's
    digit limit, or nesting far past any recursion limit (hypothesis raises the limit while it runs)."""
    return "9" * junk.integer(5_000, 20_000) if junk.chance() else nested(junk.integer(10_000, 25_000))


# -- valid frames ----------------------------------------------------------------------------
def chat_message(junk: Junk) -> Case:
    content = junk.text(1, 60)
    attributes = junk.pick((_OMIT, None, {junk.text(1, 10): junk.text(0, 20) for _ in range(junk.integer(0, 3))}))
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": content, "Attributes": attributes})
    return Case(encode(junk, wire), _message(content, None if attributes is _OMIT else attributes, rid))


def message_at_the_length_limit(junk: Junk) -> Case:
    """Content of exactly the room's limit in code points (emoji, combining marks, RTL...), or one less."""
    content = _repeat(_unit(junk), LIMIT - junk.pick((0, 1)))
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": content})
    return Case(encode(junk, wire), _message(content, None, rid))


def message_with_nested_junk(junk: Junk) -> Case:
    """A valid message carrying an ignored member nested a few dozen levels deep."""
    content = junk.text(1, 60)
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": content, "Junk": _raw(0)})
    return Case(encode(junk, wire, nested(junk.integer(1, 60))), _message(content, None, rid))


#: Padding characters: 1 to 4 UTF-8 bytes, and JSON escapes (which count as the bytes they take on the wire).
PAD_FILLERS = ("a", "\u00e9", "\u4e2d", "\U0001f600", "\n", "\\")


def padded(junk: Junk, size: int) -> tuple[str, dict[str, Any], str]:
    """A valid message's JSON grown to exactly ``size`` UTF-8 bytes with an ignored member."""
    content = junk.text(1, 60)
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": content})
    ascii_only = junk.chance()
    body = fuzzutil.dumps(wire, ascii_only)
    filler = json.dumps(junk.pick(PAD_FILLERS), ensure_ascii=ascii_only)[1:-1]
    room = size - len(body.encode()) - len(',"Padding":""')
    repeats, rest = divmod(room, len(filler.encode()))
    payload = f'{body[:-1]},"Padding":"{filler * repeats}{"a" * rest}"}}'
    assert len(payload.encode()) == size
    return payload, _message(content, None, rid), rid


def message_of_the_largest_frame(junk: Junk) -> Case:
    payload, answer, _ = padded(junk, MAX_FRAME_BYTES)
    return Case(payload, answer)


def _message_id(junk: Junk) -> str:
    return "".join(junk.pick(_ID_CHARACTERS) for _ in range(ID_LENGTH))


def delete_message(junk: Junk) -> Case:
    message_id, reason = _message_id(junk), junk.pick((_OMIT, None, junk.text(0, 40)))
    wire, rid = request(junk, "DELETE_MESSAGE", {"Id": message_id, "Reason": reason})
    reason_text = reason if isinstance(reason, str) else ""
    return Case(encode(junk, wire), {"Type": "EVENT", "RequestId": rid, "EventName": frames.DELETE_MESSAGE_EVENT,
                                     "Attributes": {"MessageID": message_id, "MessageId": message_id,
                                                    "Reason": reason_text}})


# -- frames that must be refused -------------------------------------------------------------
def disconnect_without_the_capability(junk: Junk) -> Case:
    wire, rid = request(junk, "DISCONNECT_USER", {"UserId": junk.text(1, 40), "Reason": junk.text(0, 20)})
    return Case(encode(junk, wire), _error(403, rid))


def delete_of_what_the_api_refuses(junk: Junk) -> Case:
    """An Id that is no message id, or a Reason past the model's limit: 400, as DeleteMessage answers."""
    if junk.chance():
        message_id, reason = junk.text(0, 40), _OMIT
        if re.fullmatch(f"[a-zA-Z0-9]{{{ID_LENGTH}}}", message_id):
            message_id += junk.pick(("-", "_", " "))
    else:
        message_id, reason = _message_id(junk), _repeat(_unit(junk), REASON_MAX + junk.integer(1, 3))
    wire, rid = request(junk, "DELETE_MESSAGE", {"Id": message_id, "Reason": reason})
    return Case(encode(junk, wire), _error(400, rid))


def content_over_the_limit(junk: Junk) -> Case:
    content = _repeat(_unit(junk), LIMIT + junk.integer(1, 3))
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": content})
    return Case(encode(junk, wire), _error(400, rid))


def content_missing_or_empty(junk: Junk) -> Case:
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": junk.pick(("", None, _OMIT))})
    return Case(encode(junk, wire), _error(400, rid))


def member_of_the_wrong_type(junk: Junk) -> Case:
    """Content, Id or Reason that is not a string; Attributes that is not a map of strings."""
    action, key = junk.pick((("SEND_MESSAGE", "Content"), ("SEND_MESSAGE", "Attributes"),
                             ("DELETE_MESSAGE", "Id"), ("DELETE_MESSAGE", "Reason")))
    members: dict[str, Any] = {"Content": junk.text(1, 20)} if action == "SEND_MESSAGE" else {"Id": junk.text(1, 20)}
    raw: list[str] = []
    readable = True
    if key == "Attributes":
        bad = _not_a_string(junk)
        members[key] = {"ok": "fine", junk.text(1, 5): bad} if junk.chance() or isinstance(bad, dict) else bad
    elif junk.chance():
        readable = junk.chance()
        members[key] = _raw(0)
        raw.append(junk.pick(ODD_LITERALS) if readable else _unreadable_literal(junk))
    else:
        members[key] = _not_a_string(junk)
    wire, rid = request(junk, action, members)
    return Case(encode(junk, wire, *raw), _error(400, rid if readable else ""))


def attributes_over_1kb(junk: Junk) -> Case:
    """Message attributes of 1 KB + 1 or more in UTF-8 (fewer characters when they are multi-byte)."""
    unit = junk.pick(("a", "\u00e9", "\u4e2d", "\U0001f600"))
    value = unit * math.ceil((MAX_ATTRIBUTES_BYTES + junk.integer(0, 200)) / len(unit.encode()))
    wire, rid = request(junk, "SEND_MESSAGE", {"Content": junk.text(1, 20), "Attributes": {"k": value}})
    return Case(encode(junk, wire), _error(413, rid))


def lone_surrogate(junk: Junk) -> Case:
    """A lone surrogate (a ``\\uD800``-style escape) in any string the server reads."""
    where = junk.pick(("Content", "attribute key", "attribute value", "RequestId", "Id", "Reason"))
    broken = junk.broken_text()
    if where in ("Id", "Reason"):
        members = {"Id": junk.text(1, 10), "Reason": junk.text(0, 10), where: broken}
        wire, rid = request(junk, "DELETE_MESSAGE", members)
    else:
        attributes = {broken: "v"} if where == "attribute key" else {"k": broken} if where == "attribute value" \
            else _OMIT
        members = {"Content": broken if where == "Content" else junk.text(1, 20), "Attributes": attributes}
        wire, rid = request(junk, "SEND_MESSAGE", members, rid=broken if where == "RequestId" else None)
    return Case(encode(junk, wire), _error(400, rid))


def unknown_action(junk: Junk) -> Case:
    action = junk.pick((junk.text(0, 20), _OMIT, junk.pick(ACTIONS).lower(), junk.cased(junk.pick(ACTIONS)),
                        _not_a_string(junk)))
    if action in ACTIONS:
        action = _OMIT
    wire, rid = request(junk, action, {"Content": junk.text(1, 20), "Id": junk.text(1, 10)})
    return Case(encode(junk, wire), _error(400, rid))


def request_id_of_the_wrong_type(junk: Junk) -> Case:
    wire, _ = request(junk, "SEND_MESSAGE", {"Content": junk.text(1, 20)}, rid=_not_a_string(junk))
    return Case(encode(junk, wire), _error(400))


def _is_object(payload: str) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except (ValueError, RecursionError):
        return False


def not_a_request_object(junk: Junk) -> Case:
    """JSON that is not an object, text that is not JSON, absurd literals, or an object without Action."""
    roll = junk.random.randrange(5)
    if roll == 0:
        value = junk.json(3)
        payload = encode(junk, [value] if isinstance(value, dict) else value)
    elif roll == 1:
        payload = junk.text(0, 40)
        payload = payload if not _is_object(payload) else f"[{payload}"
    elif roll == 2:
        payload = junk.pick(ODD_LITERALS)
    elif roll == 3:
        payload = _unreadable_literal(junk)
    else:
        members = {junk.text(0, 10): junk.json(2) for _ in range(junk.integer(0, 4))}
        payload = encode(junk, {key: value for key, value in members.items() if key.lower() not in _KNOWN_KEYS})
    return Case(payload, _error(400))


def binary_frame(junk: Junk) -> Case:
    """Binary frames are refused whatever they hold, even a perfect request."""
    if junk.chance():
        return Case(str(chat_message(junk).payload).encode(), _error(400))
    return Case(junk.random.randbytes(junk.integer(0, 200)), _error(400))


def frame_over_the_size_limit(junk: Junk) -> Case:
    """A frame above MAX_FRAME_BYTES (text or binary) is refused with 413, and only that frame."""
    payload, _, rid = padded(junk, MAX_FRAME_BYTES + junk.integer(1, 20_000))
    return Case(payload.encode(), _error(413)) if junk.chance() else Case(payload, _error(413, rid))


#: Every kind of frame, plainest first; plain messages and non-requests come up twice as often.
KINDS = (chat_message, chat_message, delete_message, message_at_the_length_limit, message_with_nested_junk,
         message_of_the_largest_frame, disconnect_without_the_capability, delete_of_what_the_api_refuses,
         content_over_the_limit,
         content_missing_or_empty, member_of_the_wrong_type, attributes_over_1kb, lone_surrogate, unknown_action,
         request_id_of_the_wrong_type, not_a_request_object, not_a_request_object, binary_frame,
         frame_over_the_size_limit)
SEEDS = fuzzutil.seeds(KINDS)


# -- checking answers ------------------------------------------------------------------------
def _show(payload: str | bytes) -> str:
    shown = repr(payload)
    return shown if len(shown) <= 300 else f"{shown[:300]}... ({len(payload)} {type(payload).__name__})"


def check_answer(case: Case, raw: str | bytes) -> None:
    """The answer is a well-formed server frame carrying every field the case expects."""
    context = f"frame {_show(case.payload)} got {_show(raw)}"
    assert isinstance(raw, str), f"server frames are text; {context}"
    frame = frames.loads(raw)  # raises FrameError for anything malformed
    if isinstance(frame, frames.ChatErrorFrame):
        assert frame.error_code in DOCUMENTED_CODES, f"undocumented ErrorCode; {context}"
    answer = json.loads(raw)
    wrong = {key: answer.get(key) for key, value in case.answer.items() if answer.get(key) != value}
    assert not wrong, f"expected {case.answer}; {context}"


class Lane:
    """One room: a fuzzing connection whose answers are recorded in order, and a silent bystander."""

    def __init__(self, room_arn: str, fuzzer: ClientConnection, bystander: ClientConnection) -> None:
        self.room_arn = room_arn
        self.fuzzer, self.bystander = fuzzer, bystander
        self.sent: list[Case] = []
        self.answers: list[str | bytes] = []
        self.clean = True  # False once an example failed midway: the lane is replaced, not reused
        self._paced_answers: deque[float] = deque()  # when answers to paced frames arrived
        self._in_flight = 0  # paced frames sent and not yet answered
        self._progress = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, sandbox: Sandbox, ivschat: Any) -> Lane:
        room = await asyncio.to_thread(ivschat.create_room, maximumMessageLength=LIMIT,
                                       maximumMessageRatePerSecond=RATE)
        return cls(room["arn"], await join(sandbox, room["arn"], FUZZER, CAPABILITIES),
                   await join(sandbox, room["arn"], "bystander", ()))

    async def close(self) -> None:
        await asyncio.gather(self.fuzzer.close(), self.bystander.close())
        await asyncio.wait([self._reader], timeout=TIMEOUT)

    async def _read(self) -> None:
        try:
            async for raw in self.fuzzer:
                index = len(self.answers)
                self.answers.append(raw)
                if index < len(self.sent) and self.sent[index].paced:
                    self._in_flight -= 1
                    self._paced_answers.append(time.monotonic())
                self._progress.set()
        except ConnectionClosed:
            pass
        self._progress.set()

    async def _progressed(self, waiting_for: str) -> None:
        self._progress.clear()
        if self._reader.done():
            raise AssertionError(f"the sandbox closed the fuzzing connection (code {self.fuzzer.close_code}, "
                                 f"{self.fuzzer.close_reason!r}) while we waited for {waiting_for}")
        try:
            await asyncio.wait_for(self._progress.wait(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"the sandbox did not answer within {TIMEOUT} s: waited for {waiting_for}, "
                                 f"last frame sent {_show(self.sent[-1].payload)}") from None

    async def _rate_slot(self) -> None:
        """Wait until one more message cannot exceed the room rate as the server counts it.

        The server counts messages it accepted in the last second; each was either answered within
        the last second (we saw the answer after it was counted, on the same monotonic clock: the
        sandbox runs in this process) or is still in flight.
        """
        while True:
            now = time.monotonic()
            while self._paced_answers and now - self._paced_answers[0] >= 1.0:
                self._paced_answers.popleft()
            if len(self._paced_answers) + self._in_flight < RATE:
                return
            if self._in_flight:
                await self._progressed("the answer to a chat message")
            else:  # pacing to a rate: nothing to wait for but the clock
                await asyncio.sleep(self._paced_answers[0] + 1.0 - now)

    async def play(self, cases: list[Case]) -> None:
        """Send ``cases`` back to back (pacing only messages), then check every answer and the bystander."""
        self.clean = False
        start = len(self.sent)
        for case in cases:
            if case.paced:
                await self._rate_slot()
                self._in_flight += 1
            self.sent.append(case)
            await self.fuzzer.send(case.payload)
        while len(self.answers) < len(self.sent):
            await self._progressed(f"answer {len(self.answers) + 1} of {len(self.sent)}")
        for case, raw in zip(self.sent[start:], self.answers[start:]):
            check_answer(case, raw)
        for case, raw in zip(self.sent[start:], self.answers[start:]):
            if case.delivered:
                seen = await asyncio.wait_for(self.bystander.recv(), TIMEOUT)
                assert seen == raw, f"the bystander got {_show(seen)} where the sender got {_show(raw)}"
        self.clean = True

    async def finish(self, ivschat: Any) -> None:
        """A plain message still round-trips, and nothing else is on its way to either socket."""
        await self.play([Case(json.dumps({"Action": "SEND_MESSAGE", "Content": "still here"}),
                              _message("still here", None, ""))])
        event = await asyncio.to_thread(ivschat.send_event, roomIdentifier=self.room_arn, eventName="fuzz:end")
        while len(self.answers) <= len(self.sent):
            await self._progressed("the closing event")
        for raw in (self.answers[len(self.sent)], await asyncio.wait_for(self.bystander.recv(), TIMEOUT)):
            assert json.loads(raw)["Id"] == event["id"], f"unexpected frame before the closing event: {_show(raw)}"
        assert len(self.answers) == len(self.sent) + 1 and self.fuzzer.close_code is None


class Lanes:
    """The lanes of one test, on the test's own event loop; a lane that failed an example is replaced."""

    def __init__(self, sandbox: Sandbox, ivschat: Any) -> None:
        self.sandbox, self.ivschat = sandbox, ivschat
        self.lanes: list[Lane] = []
        self.frames_sent = 0

    async def play(self, batch: list[Case]) -> None:
        for index, lane in enumerate(self.lanes):
            if not lane.clean:
                await lane.close()
                self.lanes[index] = await Lane.open(self.sandbox, self.ivschat)
        while len(self.lanes) < LANES:
            self.lanes.append(await Lane.open(self.sandbox, self.ivschat))
        self.frames_sent += len(batch)
        try:
            async with asyncio.TaskGroup() as group:
                for index, lane in enumerate(self.lanes):
                    group.create_task(lane.play(batch[index::LANES]))
        except ExceptionGroup as failed:  # report the first lane's failure as itself
            raise failed.exceptions[0] from None

    async def finish(self) -> None:
        async with asyncio.TaskGroup() as group:
            for lane in self.lanes:
                group.create_task(lane.finish(self.ivschat))

    async def close(self) -> None:
        await asyncio.gather(*(lane.close() for lane in self.lanes))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Rate quotas off: the fuzzer sends hundreds of DELETE_MESSAGE requests a second, and the shared
    DeleteMessage quota's 429s would hide the answers under test (tests/test_control_quotas.py covers it)."""
    with Sandbox(rate_quotas=False) as running:
        yield running


# websockets' keepalive pings (at both ends) draw from the global ``random`` while hypothesis generates,
# which a long (scaled) run notices; the frames themselves come from seeded generators.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_generated_frames_never_break_the_room(sandbox: Sandbox, ivschat: Any) -> None:
    loop = asyncio.new_event_loop()
    lanes = Lanes(sandbox, ivschat)

    @fuzzutil.fuzz_settings(max_examples=math.ceil(FRAMES / BATCH))
    @given(st.lists(SEEDS, min_size=BATCH, max_size=BATCH))
    def play(batch: list[tuple[Any, int]]) -> None:
        loop.run_until_complete(lanes.play([kind(Junk(seed)) for kind, seed in batch]))

    try:
        play()
        loop.run_until_complete(lanes.finish())
    finally:
        loop.run_until_complete(lanes.close())
        loop.close()
    assert lanes.frames_sent >= FRAMES
