"""Workshop mode through its API, in this process: ``workshop.start()``, the Presenter, ``join``.

The sandbox runs on a background thread with TLS and presenter-only credentials, as a presenter's
notebook starts it; attendees join over loopback and chat with ``Attendee.chat_room()``. The
process-level run (``ivs-sandbox --workshop``, 50 attendees) is ``test_workshop_process.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import fuzzutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sandbox_process import IVS_SANDBOX, START_TIMEOUT
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ivs_widgets import workshop
from ivs_widgets.chat import ChatError, ChatRoom, ConnectionState, DisconnectReason
from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.messaging.activity import RATE_WINDOW_SECONDS
from ivs_widgets.sandbox.workshop.models import MAX_DISPLAY_NAME

TIMEOUT = 10.0
SESSION_MINUTES = botocore.session.get_session().get_service_model("ivschat").shape_for(
    "CreateChatTokenRequest").members["sessionDurationInMinutes"].metadata


@pytest.fixture
def presenter() -> Iterator[workshop.Presenter]:
    with workshop.start() as started:
        yield started


@pytest.fixture
def fingerprint(presenter: workshop.Presenter) -> str:
    assert presenter.fingerprint is not None
    return presenter.fingerprint


@pytest.fixture
def invite(presenter: workshop.Presenter) -> dict[str, Any]:
    room = presenter.client.create_room(name="Workshop")
    return presenter.open_room(room["arn"])


def refused(call: Any, *args: Any, **kwargs: Any) -> workshop.WorkshopError:
    """The WorkshopError ``call`` raises (fails if it succeeds)."""
    with pytest.raises(workshop.WorkshopError) as error:
        call(*args, **kwargs)
    return error.value


def disconnection(room: ChatRoom) -> asyncio.Future[DisconnectReason | None]:
    """Resolves with the reason when ``room`` next becomes disconnected (register before the cause)."""
    ended: asyncio.Future[DisconnectReason | None] = asyncio.get_running_loop().create_future()

    def seen(state: ConnectionState, reason: DisconnectReason | None) -> None:
        if state is ConnectionState.DISCONNECTED and not ended.done():
            ended.set_result(reason)

    room.on("state", seen)
    return ended


def minted(presenter: workshop.Presenter, code: str) -> int:
    return next(i["tokensMinted"] for i in presenter.invites() if i["code"] == code)


# -- joining ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_DISPLAY_NAME + 1)], ids=["empty", "blank", "too-long"])
def test_a_display_name_must_be_given_and_short(presenter: Any, invite: Any, fingerprint: str, name: str) -> None:
    error = refused(workshop.join, presenter.url, invite["code"], name, fingerprint=fingerprint)
    assert (error.status, error.code) == (400, "ValidationException")
    assert "displayName" in error.message
    assert minted(presenter, invite["code"]) == 0


def test_the_longest_display_name_is_kept_whole(presenter: Any, invite: Any, fingerprint: str) -> None:
    name = "é" * MAX_DISPLAY_NAME
    assert workshop.join(presenter.url, invite["code"], f"  {name} ", fingerprint=fingerprint).display_name == name


def test_an_unknown_room_code_is_not_found(presenter: Any, invite: Any, fingerprint: str) -> None:
    error = refused(workshop.join, presenter.url, "ZZZZ-ZZZZ", "Ada", fingerprint=fingerprint)
    assert (error.status, error.code) == (404, "ResourceNotFoundException")


def test_a_room_code_may_be_typed_in_lower_case_without_its_dash(presenter: Any, invite: Any, fingerprint: str) -> None:
    code = invite["code"]
    typed = [code.lower(), code.replace("-", ""), f" {code[:4].lower()} {code[5:]} "]
    joined = [workshop.join(presenter.url, variant, f"Attendee {n}", fingerprint=fingerprint)
              for n, variant in enumerate(typed)]
    assert {attendee.room_arn for attendee in joined} == {invite["roomArn"]}
    assert len({attendee.user_id for attendee in joined}) == len(typed)
    assert minted(presenter, code) == len(typed)


async def test_a_returning_attendee_keeps_their_user_id(presenter: Any, invite: Any, fingerprint: str) -> None:
    ada = await asyncio.to_thread(workshop.join, presenter.url, invite["code"], "Ada", fingerprint=fingerprint)
    said = []
    for _ in range(2):  # the token from join, then a fresh one claimed with the seat
        async with ada.chat_room() as room:
            said.append(await room.send_message("hello again"))
    assert [m.sender.user_id for m in said] == [ada.user_id, ada.user_id]
    assert minted(presenter, invite["code"]) == 2


async def test_tokens_carry_the_invites_capabilities_and_the_display_name(
        presenter: Any, fingerprint: str) -> None:
    room = presenter.client.create_room(name="Moderated")
    invite = presenter.open_room(room["arn"], ["DELETE_MESSAGE", "SEND_MESSAGE", "DELETE_MESSAGE"])
    assert invite["capabilities"] == ["DELETE_MESSAGE", "SEND_MESSAGE"]
    ada = await asyncio.to_thread(workshop.join, presenter.url, invite["code"], "Ada Lovelace",
                                  fingerprint=fingerprint)
    assert ada.capabilities == invite["capabilities"]

    async with ada.chat_room() as chat:
        said = await chat.send_message("a typo")
        assert said.sender.attributes == {"displayName": "Ada Lovelace"}
        assert (await chat.delete_message(said.id)).message_id == said.id
        with pytest.raises(ChatError) as kicking:
            await chat.disconnect_user("someone")
        assert kicking.value.code == 403


async def test_a_read_only_invite_lets_attendees_watch_but_not_send(presenter: Any, fingerprint: str) -> None:
    room = presenter.client.create_room(name="Lecture")
    invite = presenter.open_room(room["arn"], [])
    viewer = await asyncio.to_thread(workshop.join, presenter.url, invite["code"], "Viewer", fingerprint=fingerprint)
    async with viewer.chat_room() as chat:
        with pytest.raises(ChatError) as sending:
            await chat.send_message("may I?")
        assert sending.value.code == 403


# -- opening rooms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    {"capabilities": ["SHOUT"]},
    {"session_duration_minutes": SESSION_MINUTES["min"] - 1},
    {"session_duration_minutes": SESSION_MINUTES["max"] + 1},
    {"max_tokens": 0},
], ids=["unknown-capability", "session-too-short", "session-too-long", "no-tokens"])
def test_open_room_refuses_what_the_ivschat_model_refuses(presenter: Any, options: dict[str, Any]) -> None:
    room = presenter.client.create_room()
    error = refused(presenter.open_room, room["arn"], **options)
    assert (error.status, error.code) == (400, "ValidationException")
    assert presenter.invites() == []


def test_open_room_needs_an_existing_room(presenter: Any) -> None:
    error = refused(presenter.open_room, "arn:aws:ivschat:us-east-1:123456789012:room/abcdefghijkl")
    assert (error.status, error.code) == (404, "ResourceNotFoundException")


def test_the_session_length_of_an_invite_bounds_its_tokens(presenter: Any, fingerprint: str) -> None:
    room = presenter.client.create_room()
    invite = presenter.open_room(room["arn"], session_duration_minutes=SESSION_MINUTES["max"])
    assert invite["sessionDurationInMinutes"] == SESSION_MINUTES["max"]
    token = workshop.join(presenter.url, invite["code"], "Ada", fingerprint=fingerprint).token_provider()()
    assert token.session_expiration_time is not None
    left = token.session_expiration_time - datetime.now(UTC)
    assert timedelta(minutes=SESSION_MINUTES["max"] - 1) < left <= timedelta(minutes=SESSION_MINUTES["max"])


# -- the presenter's view -----------------------------------------------------------------------------
async def test_activity_shows_who_is_there_what_they_said_and_what_was_refused(
        presenter: Any, invite: Any, fingerprint: str) -> None:
    ada, ben = [await asyncio.to_thread(workshop.join, presenter.url, invite["code"], name, fingerprint=fingerprint)
                for name in ("Ada", "Ben")]
    with pytest.raises(workshop.WorkshopError):
        await asyncio.to_thread(workshop.join, presenter.url, "ZZZZ-ZZZZ", "Lost", fingerprint=fingerprint)
    async with ada.chat_room() as ada_chat, ben.chat_room() as ben_chat:
        said = [await ada_chat.send_message("one"), await ben_chat.send_message("two"),
                await ada_chat.send_message("three")]
        with pytest.raises(ChatError):
            await ben_chat.delete_message(said[0].id)
        with pytest.raises(InvalidStatus) as handshake:  # a forged token
            await connect(ada.messaging_url, subprotocols=["not-a-token"], ssl=ada.ssl, open_timeout=TIMEOUT)
        assert handshake.value.response.status_code == 401
        activity = await asyncio.to_thread(presenter.activity)

    [room] = activity["rooms"]
    assert room["roomArn"] == invite["roomArn"] and room["name"] == "Workshop"
    assert room["users"] == sorted([{"userId": a.user_id, "displayName": a.display_name, "connections": 1}
                                    for a in (ada, ben)], key=lambda user: user["userId"])
    assert room["connections"] == 2
    assert room["messages"] == sum(room["messageRate"]) == len(said)
    assert len(room["messageRate"]) == RATE_WINDOW_SECONDS
    assert room["errors"] == 1
    errors = [(e["kind"], e["code"], e["user_id"]) for e in activity["recentErrors"]]
    assert errors == [("join", 404, ""), ("message", 403, ben.user_id), ("handshake", 401, "")]
    assert activity["invites"] == presenter.invites() and activity["invites"][0]["tokensMinted"] == 2
    assert activity["messagingEndpoint"] == ada.messaging_url


async def test_closing_a_room_disconnects_it_and_refuses_its_code_but_keeps_other_rooms(
        presenter: Any, invite: Any, fingerprint: str) -> None:
    other = presenter.open_room(presenter.client.create_room(name="Other")["arn"])
    ada, ben = [await asyncio.to_thread(workshop.join, presenter.url, code, name, fingerprint=fingerprint)
                for code, name in ((invite["code"], "Ada"), (other["code"], "Ben"))]
    ada_chat, ben_chat = ada.chat_room(), ben.chat_room()
    await asyncio.gather(ada_chat.connect(), ben_chat.connect())
    ada_left = disconnection(ada_chat)

    closed = await asyncio.to_thread(presenter.close_room, invite["code"].lower())
    assert closed["open"] is False and closed["code"] == invite["code"]
    assert await asyncio.wait_for(ada_left, TIMEOUT) is DisconnectReason.SERVER
    for again in (lambda: workshop.join(presenter.url, invite["code"], "Cy", fingerprint=fingerprint),
                  ada.token_provider()):
        error = await asyncio.to_thread(refused, again)
        assert (error.status, error.code) == (403, "AccessDeniedException")

    assert (await ben_chat.send_message("still on")).sender.user_id == ben.user_id
    assert [i["open"] for i in presenter.invites() if i["code"] == other["code"]] == [True]
    assert {r["name"] for r in presenter.client.list_rooms()["rooms"]} == {"Workshop", "Other"}
    await ben_chat.disconnect()


async def test_reset_empties_the_sandbox_but_keeps_its_credentials_and_certificate(
        presenter: Any, invite: Any, fingerprint: str) -> None:
    presenter.client.create_logging_configuration(destinationConfiguration={"s3": {"bucketName": "chat-logs"}})
    ada = await asyncio.to_thread(workshop.join, presenter.url, invite["code"], "Ada", fingerprint=fingerprint)
    chat = ada.chat_room()
    await chat.connect()
    left = disconnection(chat)

    await asyncio.to_thread(presenter.reset)
    assert await asyncio.wait_for(left, TIMEOUT) is DisconnectReason.SERVER
    assert presenter.client.list_rooms()["rooms"] == []
    assert presenter.client.list_logging_configurations()["loggingConfigurations"] == []
    assert presenter.invites() == []
    assert presenter.activity() == {"rooms": [], "recentErrors": [], "invites": [],
                                    "messagingEndpoint": ada.messaging_url}
    error = await asyncio.to_thread(refused, ada.token_provider())
    assert (error.status, error.code) == (404, "ResourceNotFoundException")

    assert presenter.fingerprint == fingerprint
    fresh = presenter.open_room(presenter.client.create_room(name="Again")["arn"])
    again = await asyncio.to_thread(workshop.join, presenter.url, fresh["code"], "Ada", fingerprint=fingerprint)
    async with again.chat_room() as chat:
        await chat.send_message("back")


# -- trusting the workshop's certificate --------------------------------------------------------------
def test_a_wrong_fingerprint_stops_the_join_before_the_code_is_sent(presenter: Any, invite: Any,
                                                                      fingerprint: str) -> None:
    wrong = fingerprint[:-2] + ("00" if not fingerprint.endswith("00") else "11")
    error = refused(workshop.join, presenter.url, invite["code"], "Ada", fingerprint=wrong)
    assert error.code == "CertificateMismatch" and fingerprint in error.message
    assert minted(presenter, invite["code"]) == 0


def test_a_fingerprint_may_be_typed_in_lower_case_without_colons(presenter: Any, invite: Any,
                                                                   fingerprint: str) -> None:
    typed = fingerprint.replace(":", "").lower()
    assert workshop.join(presenter.url, invite["code"], "Ada", fingerprint=typed).room_arn == invite["roomArn"]


def test_without_a_fingerprint_the_certificate_is_trusted_with_a_warning(presenter: Any, invite: Any,
                                                                         fingerprint: str) -> None:
    with pytest.warns(UserWarning, match="without checking it") as warned:
        ada = workshop.join(presenter.url, invite["code"], "Ada")
    assert fingerprint in str(warned[0].message)  # so the attendee can still compare it by eye
    assert ada.ssl is not None and ada.messaging_url.startswith("wss://")


def test_a_plain_sandbox_serves_no_certificate(sandbox: Sandbox) -> None:
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{sandbox.control_endpoint}/workshop/certificate", timeout=TIMEOUT)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["__type"] == "ResourceNotFoundException"


def test_a_plain_sandbox_keeps_the_public_credentials(sandbox: Sandbox) -> None:
    assert sandbox.environment() == {
        "AWS_ENDPOINT_URL_IVSCHAT": sandbox.control_endpoint, "AWS_ENDPOINT_URL_IVS": sandbox.control_endpoint,
        "AWS_ACCESS_KEY_ID": c.SANDBOX_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": c.SANDBOX_SECRET_ACCESS_KEY, "AWS_DEFAULT_REGION": c.SANDBOX_REGION,
        c.MESSAGING_URL_VARIABLE: sandbox.messaging_endpoint}
    assert sandbox.control_endpoint.startswith("http://")
    public = boto3.client("ivschat", endpoint_url=sandbox.control_endpoint, region_name=c.SANDBOX_REGION,
                          aws_access_key_id=c.SANDBOX_ACCESS_KEY_ID, aws_secret_access_key=c.SANDBOX_SECRET_ACCESS_KEY)
    assert public.create_room(name="public")["name"] == "public"


def test_a_workshop_sandbox_has_credentials_of_its_own(presenter: Any) -> None:
    env = presenter.sandbox.environment()
    assert env["AWS_ACCESS_KEY_ID"] != c.SANDBOX_ACCESS_KEY_ID
    assert env["AWS_SECRET_ACCESS_KEY"] != c.SANDBOX_SECRET_ACCESS_KEY
    assert env["AWS_ENDPOINT_URL_IVSCHAT"] == presenter.url and presenter.url.startswith("https://")


@pytest.mark.parametrize(("options", "message"), [
    (["--host", "10.1.2.3"], "--host 10.1.2.3 lets other machines in: add --network"),
    (["--workshop", "--attendee-capabilities", "SEND_MESSAGE,send_message"],
     "--attendee-capabilities: unknown send_message (choose from"),
    (["--workshop", "--max-tokens", "0"], "--max-tokens must be from 1 to"),
    (["--workshop", "--room-name", "my room"], "--room-name: 1 validation error detected: Value 'my room'"),
], ids=["host-without-network", "unknown-capability", "no-tokens", "room-name-the-service-refuses"])
def test_ivs_sandbox_refuses_unsafe_or_mistyped_options_before_starting(options: list[str], message: str) -> None:
    result = subprocess.run([IVS_SANDBOX, "--port", "0", *options], capture_output=True, text=True,
                            timeout=START_TIMEOUT)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# -- the open route, fuzzed ----------------------------------------------------------------------
JOIN_FUZZ_REQUESTS = 400 * fuzzutil.scale()


def _junk_join_body(junk: fuzzutil.Junk, code: str, seat: tuple[str, str]) -> bytes:
    """A join request as a confused or hostile client might send it: real fields with junk values,
    a real code or seat now and then (so the checks after the first one are reached too)."""
    fields: dict[str, Any] = {}
    for name, good in (("code", code), ("displayName", "Ada"), ("userId", seat[0]), ("seat", seat[1])):
        roll = junk.random.random()
        if roll < 0.35:
            fields[name] = good
        elif roll < 0.55:
            fields[name] = junk.broken_text() if junk.chance() else junk.text(0, 80)
        elif roll < 0.75:
            fields[name] = junk.json(2)
    if junk.chance(0.2):
        fields[junk.text(0, 8)] = junk.json(2)
    if junk.chance(0.1):
        return junk.pick([b"", b"\xff\xfe", b"[]", b"null", fuzzutil.nested(5000).encode(), b"{" * 3000])
    return fuzzutil.dumps(fields, ascii_only=junk.chance()).encode("utf-8", "surrogatepass")


def test_the_join_route_answers_any_body_with_a_modeled_error_or_a_token(presenter: workshop.Presenter,
                                                                          invite: dict[str, Any]) -> None:
    """Anyone on the network can reach /workshop/join: whatever they send gets a 2xx/4xx answer in the
    rest-json error shape, never a 500, and real attendees keep joining."""
    ada = workshop.join(presenter.url, invite["code"], "Ada", fingerprint=presenter.fingerprint)
    seat = (ada.user_id, ada._seat)
    outcomes: dict[int, int] = {}

    @fuzzutil.fuzz_settings(max_examples=JOIN_FUZZ_REQUESTS)
    @given(st.integers(0, 2**32 - 1))
    def one(seed: int) -> None:
        body = _junk_join_body(fuzzutil.Junk(seed), invite["code"], seat)
        request = urllib.request.Request(f"{presenter.url}/workshop/join", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10, context=presenter.ssl) as response:
                status, answer = response.status, json.loads(response.read())
            assert {"token", "userId", "seat"} <= answer.keys()
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read())
            assert status in (400, 402, 403, 404, 413), (status, answer, body[:200])
            assert answer["__type"].endswith("Exception") and answer["message"], answer
        outcomes[status] = outcomes.get(status, 0) + 1

    one()
    assert outcomes.get(200) and outcomes.get(400) and outcomes.get(404), outcomes
    again = workshop.join(presenter.url, invite["code"], "Ben", fingerprint=presenter.fingerprint)
    assert again.user_id.startswith("ben-")
