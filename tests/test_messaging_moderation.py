"""Moderation and connection lifecycle over raw sockets: deletes, disconnects, room deletion, session expiry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.config import Config
from wsutil import barrier, closed_with, join, next_frame, next_of, say, send

from ivs_widgets.sandbox import Sandbox

MODERATOR = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")


def _assert_event(frame: dict[str, Any], name: str, attributes: dict[str, str], request_id: str) -> None:
    assert frame["Type"] == "EVENT"
    assert set(frame) == {"Type", "Id", "RequestId", "Attributes", "EventName", "SendTime"}
    assert (frame["EventName"], frame["Attributes"], frame["RequestId"]) == (name, attributes, request_id)


@pytest.mark.parametrize("reason", ["off topic", None])
async def test_delete_message_is_announced_to_everyone(sandbox: Sandbox, room: dict[str, Any],
                                                       reason: str | None) -> None:
    async with await join(sandbox, room["arn"], "mod", MODERATOR) as mod, \
            await join(sandbox, room["arn"], "bob") as bob:
        await say(bob, "spam")
        message_id = (await next_of(mod, "MESSAGE"))["Id"]
        await next_of(bob, "MESSAGE")
        await send(mod, Action="DELETE_MESSAGE", RequestId="del-1", Id=message_id,
                   **({"Reason": reason} if reason else {}))
        events = [await next_frame(mod), await next_frame(bob)]
    # The SDK reads MessageID, the documentation MessageId: both are sent.
    expected = {"MessageID": message_id, "MessageId": message_id, "Reason": reason or ""}
    for event in events:
        _assert_event(event, "aws:DELETE_MESSAGE", expected, "del-1")
    assert events[0] == events[1]


async def test_delete_message_needs_the_capability(sandbox: Sandbox, ivschat: Any, room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice", ("SEND_MESSAGE",)) as alice, \
            await join(sandbox, room["arn"], "bob") as bob:
        await send(alice, Action="DELETE_MESSAGE", RequestId="nope", Id="AAAAAAAAAAAA")
        error = await next_of(alice, "ERROR")
        assert (error["ErrorCode"], error["RequestId"]) == (403, "nope")
        await barrier(ivschat, room["arn"], alice, bob)


async def test_disconnect_user_closes_every_connection_of_that_user_only(sandbox: Sandbox, ivschat: Any,
                                                                        room: dict[str, Any]) -> None:
    other_room = ivschat.create_room(name="elsewhere")["arn"]
    async with await join(sandbox, room["arn"], "mod", MODERATOR) as mod, \
            await join(sandbox, room["arn"], "carol") as carol, \
            await join(sandbox, room["arn"], "bob") as bob_tab1, \
            await join(sandbox, room["arn"], "bob") as bob_tab2, \
            await join(sandbox, other_room, "bob") as bob_elsewhere:
        await send(mod, Action="DISCONNECT_USER", RequestId="kick-1", UserId="bob", Reason="spam")
        for ws in (mod, carol, bob_tab1, bob_tab2):
            _assert_event(await next_frame(ws), "aws:DISCONNECT_USER", {"UserId": "bob", "Reason": "spam"}, "kick-1")
        assert await closed_with(bob_tab1) == 1000
        assert await closed_with(bob_tab2) == 1000
        # Everyone else keeps chatting, and bob's connection to another room is untouched.
        await say(carol, "bye bob")
        assert (await next_of(mod, "MESSAGE"))["Content"] == "bye bob"
        assert (await next_of(carol, "MESSAGE"))["Content"] == "bye bob"
        await say(bob_elsewhere, "still here")
        assert (await next_of(bob_elsewhere, "MESSAGE"))["Content"] == "still here"


async def test_moderation_requests_accept_the_lowercase_keys_of_third_party_clients(sandbox: Sandbox,
                                                                                  room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "mod", MODERATOR) as mod, \
            await join(sandbox, room["arn"], "bob") as bob:
        await send(mod, action="DELETE_MESSAGE", requestId="d", id="AbCdEf123456", reason="r")
        _assert_event(await next_frame(mod), "aws:DELETE_MESSAGE",
                      {"MessageID": "AbCdEf123456", "MessageId": "AbCdEf123456", "Reason": "r"}, "d")
        await send(mod, action="DISCONNECT_USER", requestId="k", userId="bob", reason="r")
        _assert_event(await next_frame(mod), "aws:DISCONNECT_USER", {"UserId": "bob", "Reason": "r"}, "k")
        assert await closed_with(bob) == 1000


#: (WebSocket request, the API call that replicates it, the field both refuse)
REFUSED_BY_BOTH = [
    ({"Action": "DELETE_MESSAGE", "Id": "short"}, ("delete_message", {"id": "short"}), "Id"),
    ({"Action": "DELETE_MESSAGE", "Id": "AbCdEf-hIjK_"}, ("delete_message", {"id": "AbCdEf-hIjK_"}), "Id"),
    ({"Action": "DELETE_MESSAGE", "Id": "AbCdEfGhIjKl", "Reason": "r" * 300},
     ("delete_message", {"id": "AbCdEfGhIjKl", "reason": "r" * 300}), "Reason"),
    ({"Action": "DISCONNECT_USER", "UserId": "u" * 200}, ("disconnect_user", {"userId": "u" * 200}), "UserId"),
    ({"Action": "DISCONNECT_USER", "UserId": "bob", "Reason": "r" * 300},
     ("disconnect_user", {"userId": "bob", "reason": "r" * 300}), "Reason"),
]


@pytest.mark.parametrize(("request_fields", "api_call", "field"), REFUSED_BY_BOTH,
                         ids=["short-id", "id-pattern", "long-delete-reason", "long-user-id", "long-kick-reason"])
async def test_moderation_values_the_api_refuses_are_refused_to_the_requester_only(
        sandbox: Sandbox, ivschat: Any, room: dict[str, Any], request_fields: dict[str, str],
        api_call: tuple[str, dict[str, str]], field: str) -> None:
    method, members = api_call
    unchecked = sandbox.client(config=Config(parameter_validation=False))  # boto3 itself refuses a short id
    with pytest.raises(unchecked.exceptions.ValidationException):
        await asyncio.to_thread(getattr(unchecked, method), roomIdentifier=room["arn"], **members)
    async with await join(sandbox, room["arn"], "mod", MODERATOR) as mod, \
            await join(sandbox, room["arn"], "bob") as bob:
        await send(mod, RequestId="bad", **request_fields)
        error = await next_of(mod, "ERROR")
        assert (error["ErrorCode"], error["RequestId"]) == (400, "bad")
        assert f"at '{field}'" in error["ErrorMessage"]
        assert "u" * 200 not in error["ErrorMessage"]  # a user id is sensitive: never echoed
        await barrier(ivschat, room["arn"], mod, bob)  # nothing was announced, bob is still connected


async def test_disconnect_user_needs_the_capability(sandbox: Sandbox, ivschat: Any, room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice", ("SEND_MESSAGE", "DELETE_MESSAGE")) as alice, \
            await join(sandbox, room["arn"], "bob") as bob:
        await send(alice, Action="DISCONNECT_USER", RequestId="nope", UserId="bob")
        error = await next_of(alice, "ERROR")
        assert (error["ErrorCode"], error["RequestId"]) == (403, "nope")
        await barrier(ivschat, room["arn"], alice, bob)


# -- the control plane reaches live connections ---------------------------------------------
async def test_control_plane_send_event_reaches_live_connections(sandbox: Sandbox, ivschat: Any,
                                                                 room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice") as alice, await join(sandbox, room["arn"], "bob") as bob:
        response = await asyncio.to_thread(ivschat.send_event, roomIdentifier=room["arn"], eventName="app:quiz",
                                           attributes={"round": "3"})
        for ws in (alice, bob):
            event = await next_frame(ws)
            _assert_event(event, "app:quiz", {"round": "3"}, "")
            assert event["Id"] == response["id"]


async def test_control_plane_delete_message_reaches_live_connections(sandbox: Sandbox, ivschat: Any,
                                                                     room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice") as alice:
        response = await asyncio.to_thread(ivschat.delete_message, roomIdentifier=room["arn"], id="AbCdEf123456",
                                           reason="rude")
        event = await next_frame(alice)
    _assert_event(event, "aws:DELETE_MESSAGE",
                  {"MessageID": "AbCdEf123456", "MessageId": "AbCdEf123456", "Reason": "rude"}, "")
    assert event["Id"] == response["id"]


async def test_control_plane_disconnect_user_closes_that_users_connections(sandbox: Sandbox, ivschat: Any,
                                                                           room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "alice") as alice, await join(sandbox, room["arn"], "bob") as bob:
        await asyncio.to_thread(ivschat.disconnect_user, roomIdentifier=room["arn"], userId="bob", reason="bye")
        for ws in (alice, bob):
            _assert_event(await next_frame(ws), "aws:DISCONNECT_USER", {"UserId": "bob", "Reason": "bye"}, "")
        assert await closed_with(bob) == 1000
        await say(alice, "alone now")
        assert (await next_of(alice, "MESSAGE"))["Content"] == "alone now"


async def test_delete_room_closes_its_connections_cleanly(sandbox: Sandbox, ivschat: Any) -> None:
    doomed = ivschat.create_room(name="doomed")["arn"]
    survivor = ivschat.create_room(name="survivor")["arn"]
    async with await join(sandbox, doomed, "alice") as alice, await join(sandbox, doomed, "bob") as bob, \
            await join(sandbox, survivor, "carol") as carol:
        await asyncio.to_thread(ivschat.delete_room, identifier=doomed)
        assert await closed_with(alice) == 1000
        assert await closed_with(bob) == 1000
        await say(carol, "unaffected")
        assert (await next_of(carol, "MESSAGE"))["Content"] == "unaffected"


# -- session expiry --------------------------------------------------------------------------
async def test_session_expiry_sends_error_401_then_closes_cleanly(sandbox: Sandbox, room: dict[str, Any]) -> None:
    async with await join(sandbox, room["arn"], "brief", session_seconds=2) as brief, \
            await join(sandbox, room["arn"], "long") as long:
        error = await next_of(brief, "ERROR")
        assert (error["ErrorCode"], error["RequestId"]) == (401, "")
        assert await closed_with(brief) == 1000
        await say(long, "my session goes on")
        assert (await next_of(long, "MESSAGE"))["Content"] == "my session goes on"
