"""The message review handler: a Python callable standing in for the room's Lambda function.

Its verdict decides what the room sees; when it cannot give one in time (slow, raising, invalid,
missing) the room's ``fallbackResult`` decides and the original message is kept.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsutil import barrier, join, next_frame, next_of, say

from ivs_widgets.sandbox import Sandbox

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:review"
LIMIT = 20


def _room(ivschat: Any, fallback: str = "ALLOW", uri: str = LAMBDA) -> str:
    return ivschat.create_room(maximumMessageLength=LIMIT,
                               messageReviewHandler={"uri": uri, "fallbackResult": fallback})["arn"]


async def test_handler_gets_the_documented_event(sandbox: Sandbox, ivschat: Any) -> None:
    events: list[dict[str, Any]] = []

    def review(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        return {"ReviewResult": "ALLOW"}

    sandbox.register_lambda(LAMBDA, review)
    arn = _room(ivschat)
    async with await join(sandbox, arn, "alice", attributes={"displayName": "Alice"}) as alice:
        await say(alice, "hello", Attributes={"color": "red"})
        delivered = await next_of(alice, "MESSAGE")
        await say(alice, "no attributes")
        await next_of(alice, "MESSAGE")
    assert events[0] == {
        "Content": "hello", "MessageId": delivered["Id"], "RoomArn": arn, "Attributes": {"color": "red"},
        "Sender": {"Attributes": {"displayName": "Alice"}, "UserId": "alice", "Ip": "127.0.0.1"},
    }
    assert events[1]["Attributes"] == {}


async def test_handler_cannot_change_the_message_by_editing_its_event(sandbox: Sandbox, ivschat: Any) -> None:
    # A Lambda receives a serialised copy of the event: editing it in place has no effect.
    def review(event: dict[str, Any]) -> dict[str, Any]:
        event["Attributes"]["injected"] = "1"
        event["Sender"]["Attributes"]["displayName"] = "Mallory"
        return {"ReviewResult": "ALLOW"}

    sandbox.register_lambda(LAMBDA, review)
    async with await join(sandbox, _room(ivschat), "alice", attributes={"displayName": "Alice"}) as alice:
        for content in ("first", "second"):
            await say(alice, content, Attributes={"k": "v"})
            message = await next_of(alice, "MESSAGE")
            assert message["Attributes"] == {"k": "v"}
            assert message["Sender"]["Attributes"] == {"displayName": "Alice"}


@pytest.mark.parametrize("detach", ["update", "create"])
async def test_a_handler_without_a_lambda_invokes_nothing(sandbox: Sandbox, ivschat: Any, detach: str) -> None:
    """``uri: ""`` keeps the handler in the room's description, and even a DENY fallback denies nothing."""
    calls: list[dict[str, Any]] = []
    sandbox.register_lambda(LAMBDA, lambda event: calls.append(event) or {"ReviewResult": "DENY"})
    arn = _room(ivschat, "DENY") if detach == "update" else _room(ivschat, "DENY", uri="")
    if detach == "update":
        ivschat.update_room(identifier=arn, messageReviewHandler={"uri": "", "fallbackResult": "DENY"})
    async with await join(sandbox, arn, "alice") as alice:
        await say(alice, "unreviewed")
        assert (await next_of(alice, "MESSAGE"))["Content"] == "unreviewed"
    assert calls == []


async def test_allow_delivers_the_original_message(sandbox: Sandbox, ivschat: Any) -> None:
    sandbox.register_lambda(LAMBDA, lambda event: {"ReviewResult": "ALLOW"})
    arn = _room(ivschat)
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, "fine words", "r1", Attributes={"k": "v"})
        for ws in (alice, bob):
            message = await next_of(ws, "MESSAGE")
            assert (message["Content"], message["Attributes"]) == ("fine words", {"k": "v"})
            assert message["RequestId"] == "r1"


@pytest.mark.parametrize("answer", ["DENY", "raise"], ids=["verdict", "deny-fallback"])
async def test_deny_answers_406_to_the_sender_and_delivers_nothing(sandbox: Sandbox, ivschat: Any,
                                                                   answer: str) -> None:
    """The ERROR's Id is the MessageId the handler saw: the messaging API's errors name the failed
    operation by the id IVS had already given it."""
    seen: list[str] = []

    def review(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["MessageId"])
        if answer == "raise":
            raise RuntimeError("the Lambda failed")
        return {"ReviewResult": "DENY"}

    sandbox.register_lambda(LAMBDA, review)
    arn = _room(ivschat, "DENY")
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, "bad words", "r1")
        error = await next_of(alice, "ERROR")
        assert (error["ErrorCode"], error["RequestId"], error["Id"]) == (406, "r1", seen[0])
        await barrier(ivschat, arn, alice, bob)


@pytest.mark.parametrize("verdict, content, attributes", [
    ({"ReviewResult": "ALLOW", "Content": "***", "Attributes": {"flagged": "1"}}, "***", {"flagged": "1"}),
    ({"ReviewResult": "ALLOW", "Content": "***"}, "***", {"k": "v"}),
    ({"ReviewResult": "ALLOW", "Attributes": {}}, "darn it", {}),
], ids=["content-and-attributes", "content-only", "attributes-only"])
async def test_rewritten_message_is_delivered(sandbox: Sandbox, ivschat: Any, verdict: dict[str, Any],
                                             content: str, attributes: dict[str, str]) -> None:
    sandbox.register_lambda(LAMBDA, lambda event: verdict)
    arn = _room(ivschat)
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, "darn it", Attributes={"k": "v"})
        for ws in (alice, bob):
            message = await next_of(ws, "MESSAGE")
            assert (message["Content"], message["Attributes"]) == (content, attributes)


async def test_async_handler_verdict_is_applied(sandbox: Sandbox, ivschat: Any) -> None:
    async def review(event: dict[str, Any]) -> dict[str, Any]:
        return {"ReviewResult": "ALLOW", "Content": event["Content"].upper()}

    sandbox.register_lambda(LAMBDA, review)
    async with await join(sandbox, _room(ivschat)) as ws:
        await say(ws, "quiet")
        assert (await next_of(ws, "MESSAGE"))["Content"] == "QUIET"


# -- fallbackResult --------------------------------------------------------------------------
@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets a blocked handler thread finish as soon as the test is over."""
    event = threading.Event()
    yield event
    event.set()


def _slow_sync(release: threading.Event) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def review(event: dict[str, Any]) -> dict[str, Any]:
        release.wait(0.5)  # blocks well past the 200 ms the service waits
        return {"ReviewResult": "ALLOW", "Content": "too late"}
    return review


def _slow_async(release: threading.Event) -> Callable[[dict[str, Any]], Any]:
    async def review(event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.5)  # cancelled by the 200 ms timeout
        return {"ReviewResult": "ALLOW", "Content": "too late"}
    return review


def _raising(release: threading.Event) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def review(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the moderation model is down")
    return review


def _returning(result: Any) -> Callable[[threading.Event], Callable[[dict[str, Any]], Any]]:
    return lambda release: lambda event: result


FAILING_HANDLERS = {
    "slow-sync": _slow_sync,
    "slow-async": _slow_async,
    "raises": _raising,
    "unknown-result": _returning({"ReviewResult": "MAYBE", "Content": "rewritten"}),
    "not-a-dict": _returning("ALLOW"),
    "none": _returning(None),
    "over-length-content": _returning({"ReviewResult": "ALLOW", "Content": "x" * (LIMIT + 1)}),
    "empty-content": _returning({"ReviewResult": "ALLOW", "Content": ""}),
    "non-string-attribute": _returning({"ReviewResult": "ALLOW", "Attributes": {"k": 1}}),
    "unregistered": None,
}


@pytest.mark.parametrize("fallback", ["ALLOW", "DENY"])
@pytest.mark.parametrize("make_handler", FAILING_HANDLERS.values(), ids=FAILING_HANDLERS.keys())
async def test_failing_handler_applies_the_fallback_result(sandbox: Sandbox, ivschat: Any, release: threading.Event,
                                                           make_handler: Any, fallback: str) -> None:
    if make_handler is not None:
        sandbox.register_lambda(LAMBDA, make_handler(release))
    arn = _room(ivschat, fallback)
    async with await join(sandbox, arn, "alice") as alice, await join(sandbox, arn, "bob") as bob:
        await say(alice, "original", "r1", Attributes={"k": "v"})
        first = await next_frame(alice)
        if fallback == "ALLOW":
            for message in (first, await next_frame(bob)):
                assert (message["Type"], message["RequestId"]) == ("MESSAGE", "r1")
                assert (message["Content"], message["Attributes"]) == ("original", {"k": "v"})
        else:
            assert (first["Type"], first["ErrorCode"], first["RequestId"]) == ("ERROR", 406, "r1")
        await barrier(ivschat, arn, alice, bob)


async def test_an_unregistered_lambda_is_reported_once_per_arn(sandbox: Sandbox, ivschat: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Every message of a busy room meets the missing function; the log says so once, with the fix."""
    caplog.set_level(logging.WARNING, logger="ivs_widgets.sandbox.review")
    other = LAMBDA.replace(":review", ":other-review")
    rooms = [_room(ivschat), _room(ivschat), _room(ivschat, uri=other)]
    for arn in rooms:
        async with await join(sandbox, arn, "alice") as alice:
            for n in range(8):
                await say(alice, f"hello {n}")
            assert [(await next_frame(alice))["Content"] for _ in range(8)] == [f"hello {n}" for n in range(8)]
    lines = [r.getMessage() for r in caplog.records if r.name == "ivs_widgets.sandbox.review"]
    assert len(lines) == 2, lines
    assert LAMBDA in lines[0] and other in lines[1]
    assert "fallbackResult (ALLOW)" in lines[0] and "backend.review_handler" in lines[0]
