"""Chat token security: only the exact token the sandbox minted, unused, unexpired and for a live room,
opens a connection, and only to that room; tokens and secret keys never show in logs or reprs.

The basics (one altered character in three places, another key, one edited claim, expiry, reuse,
a deleted room, a path naming another room) are in test_messaging_handshake.py; these go wider.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus
from wsutil import ALL_CAPABILITIES, barrier, closed_with, join, mint, next_of, open_socket, refused_status, say, send

from ivs_widgets.backend import connect as connect_backend
from ivs_widgets.chat.background import BackgroundChatRoom
from ivs_widgets.chat.room import ChatRoom, ChatToken
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core import tokens

#: RFC 7230 token characters: everything a WebSocket subprotocol (so a chat token) may contain.
TCHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters


def _altered(token: str, index: int) -> str:
    """``token`` with the character at ``index`` replaced by another tchar (which one varies by position)."""
    current = TCHARS.index(token[index])
    replacement = TCHARS[(current + 1 + index % (len(TCHARS) - 1)) % len(TCHARS)]
    return token[:index] + replacement + token[index + 1:]


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with_claims(token: str, claims: dict[str, Any], **dumps: Any) -> str:
    """``token`` with its claims re-encoded (as minting does, unless ``dumps`` says otherwise) and the
    original signature kept."""
    prefix, _, signature = token.split(".")
    text = json.dumps(claims, **(dumps or {"separators": (",", ":"), "sort_keys": True}))
    return f"{prefix}.{base64.urlsafe_b64encode(text.encode()).rstrip(b'=').decode()}.{signature}"


async def test_every_single_character_change_is_refused(sandbox: Sandbox, ivschat: Any,
                                                        room: dict[str, Any]) -> None:
    token = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="alice",
                                      capabilities=list(ALL_CAPABILITIES), attributes={"role": "viewer"})["token"]
    statuses = {index: await refused_status(sandbox, [_altered(token, index)]) for index in range(len(token))}
    assert {index: status for index, status in statuses.items() if status != 401} == {}
    async with await open_socket(sandbox, token) as ws:  # none of the refusals spent the real token
        assert ws.subprotocol == token


@pytest.mark.parametrize("secret", ["empty", "sigv4-secret-key", "access-key-id", "another-sandbox"])
async def test_tokens_signed_with_guessable_or_foreign_secrets_are_refused(sandbox: Sandbox, room: dict[str, Any],
                                                                           secret: str) -> None:
    # The token secret is random per state: not the documented sandbox credentials, not another sandbox's.
    if secret == "another-sandbox":
        with Sandbox() as other:
            key = other.state.token_secret
    else:
        key = {"empty": b"", "sigv4-secret-key": sandbox.config.secret_access_key.encode(),
               "access-key-id": sandbox.config.access_key_id.encode()}[secret]
    claims = tokens.TokenClaims(**{**_claims(mint(sandbox, room["arn"])), "capabilities": ALL_CAPABILITIES})
    assert await refused_status(sandbox, [tokens.mint(claims, key)]) == 401


EDITS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "room": lambda claims, other_room: {**claims, "room_arn": other_room},
    "user": lambda claims, _: {**claims, "user_id": "admin"},
    "capabilities": lambda claims, _: {**claims, "capabilities": list(ALL_CAPABILITIES)},
    "attributes": lambda claims, _: {**claims, "attributes": {"role": "moderator"}},
    "token-expiry": lambda claims, _: {**claims, "token_expires_at": claims["token_expires_at"] + 86_400},
    "session-expiry": lambda claims, _: {**claims, "session_expires_at": claims["session_expires_at"] + 86_400},
    "jti": lambda claims, _: {**claims, "jti": "fresh-" + claims["jti"]},
}


@pytest.mark.parametrize("edit", EDITS)
async def test_no_claim_can_be_edited_under_the_original_signature(sandbox: Sandbox, ivschat: Any,
                                                                   room: dict[str, Any], edit: str) -> None:
    # Each edit would be worth something: another room, identity or role, an expired token or session
    # revived, or a spent token replayed under a new id.
    other_room = ivschat.create_room(name="other")["arn"]
    token = mint(sandbox, room["arn"], "alice", ("SEND_MESSAGE",), {"role": "viewer"},
                 session_seconds=3600 if edit != "session-expiry" else 0,
                 token_seconds=None if edit != "token-expiry" else 0)
    if edit == "jti":
        async with await open_socket(sandbox, token):
            pass
    assert await refused_status(sandbox, [_with_claims(token, EDITS[edit](_claims(token), other_room))]) == 401


@pytest.mark.parametrize("encoding", [{"indent": 1}, {"separators": (", ", ": ")}, {"sort_keys": False}])
async def test_the_same_claims_encoded_differently_are_refused(sandbox: Sandbox, room: dict[str, Any],
                                                               encoding: dict[str, Any]) -> None:
    # The signature binds the exact bytes, not their meaning: there is no second spelling of a token.
    token = mint(sandbox, room["arn"])
    claims = _claims(token)
    reordered = dict(reversed(list(claims.items()))) if encoding == {"sort_keys": False} else claims
    assert await refused_status(sandbox, [_with_claims(token, reordered, **encoding)]) == 401


@pytest.mark.parametrize("shape", ["v2-prefix", "no-signature", "signature-of-another-token", "extra-part",
                                   "truncated-signature", "upper-case-prefix"])
async def test_token_shaped_variants_are_refused(sandbox: Sandbox, room: dict[str, Any], shape: str) -> None:
    token = mint(sandbox, room["arn"])
    prefix, body, signature = token.split(".")
    other_signature = mint(sandbox, room["arn"]).split(".")[2]
    variant = {"v2-prefix": f"v2.{body}.{signature}", "no-signature": f"{prefix}.{body}.",
               "signature-of-another-token": f"{prefix}.{body}.{other_signature}",
               "extra-part": f"{token}.{signature}", "truncated-signature": f"{prefix}.{body}.{signature[:-1]}",
               "upper-case-prefix": f"V1.{body}.{signature}"}[shape]
    assert await refused_status(sandbox, [variant]) == 401


async def _open_or_status(sandbox: Sandbox, token: str) -> ClientConnection | int:
    try:
        return await open_socket(sandbox, token)
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_token_opens_one_connection_even_when_raced(sandbox: Sandbox, room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"])
    outcomes = await asyncio.gather(*(_open_or_status(sandbox, token) for _ in range(20)))
    opened = [ws for ws in outcomes if isinstance(ws, ClientConnection)]
    await asyncio.gather(*(ws.close() for ws in opened))
    assert len(opened) == 1 and sorted(o for o in outcomes if isinstance(o, int)) == [401] * 19


async def test_spent_tokens_stay_spent_and_unspent_ones_stay_valid_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.db"
    with Sandbox(state_path=state) as first:
        room = first.client().create_room()["arn"]
        spent, unspent = mint(first, room), mint(first, room)
        async with await open_socket(first, spent):
            pass
    with Sandbox(state_path=state) as second:
        assert await refused_status(second, [spent]) == 401
        async with await open_socket(second, unspent) as ws:
            await say(ws, "after the restart")
            assert (await next_of(ws, "MESSAGE"))["Content"] == "after the restart"


def _paths_naming(room_arn: str) -> list[str]:
    """Request paths and queries a client might hope select ``room_arn`` instead of the token's room."""
    room_id = room_arn.rsplit("/", 1)[1]
    return [f"/?roomArn={quote(room_arn, safe='')}", f"/?roomIdentifier={room_id}", f"/rooms/{room_id}",
            f"/{quote(room_arn, safe='')}", f"/{room_id}/../{room_id}", f"/?room={room_id}&room={room_id}"]


async def test_a_token_lands_in_its_room_whatever_the_path_names(sandbox: Sandbox, ivschat: Any) -> None:
    room_a = ivschat.create_room(name="a")["arn"]
    room_b = ivschat.create_room(name="b")["arn"]
    async with await join(sandbox, room_a, "watcher-a") as watcher_a, \
            await join(sandbox, room_b, "watcher-b") as watcher_b:
        for path in _paths_naming(room_b):
            async with await open_socket(sandbox, mint(sandbox, room_a, "intruder"), path) as intruder:
                await say(intruder, path)
                assert (await next_of(watcher_a, "MESSAGE"))["Content"] == path
                await next_of(intruder, "MESSAGE")
        await barrier(ivschat, room_b, watcher_b)


async def test_a_token_for_a_deleted_room_is_404_whatever_the_path_names(sandbox: Sandbox, ivschat: Any) -> None:
    room_a = ivschat.create_room(name="a")["arn"]
    room_b = ivschat.create_room(name="b")["arn"]
    unused = [mint(sandbox, room_a) for _ in range(len(_paths_naming(room_b)) + 1)]
    ivschat.delete_room(identifier=room_a)
    ivschat.create_room(name="a")  # a new room of the same name is another room
    statuses = [await refused_status(sandbox, [token], path)
                for token, path in zip(unused, ["", *_paths_naming(room_b)])]
    assert statuses == [404] * len(unused)


# -- secrets stay secret ---------------------------------------------------------------------
def _secrets(sandbox: Sandbox, used_tokens: list[str]) -> list[str]:
    """Everything that must never be shown: each token and its signature, and the sandbox's keys."""
    secret = sandbox.state.token_secret
    return [*used_tokens, *(token.split(".")[2] for token in used_tokens if token.count(".") == 2),
            sandbox.config.secret_access_key, secret.hex(), base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).rstrip(b"=").decode(), repr(secret)]


def _from_the_sandbox(record: logging.LogRecord) -> bool:
    """Records the sandbox (or our own code anywhere) wrote: its thread, its loggers, its servers."""
    return record.threadName == "ivs-sandbox" or record.name.startswith(("ivs_widgets", "websockets.server",
                                                                          "tornado"))


async def test_tokens_and_keys_never_reach_the_sandbox_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    used: list[str] = []
    with Sandbox(secret_access_key="a-secret-key-someone-chose") as sandbox:
        ivschat = sandbox.client()
        room = ivschat.create_room()["arn"]

        def token(**kwargs: Any) -> str:
            used.append(ivschat.create_chat_token(roomIdentifier=room, userId="alice", **kwargs)["token"])
            return used[-1]

        # A session: chat, a bad frame, a request without the capability, session expiry.
        async with await open_socket(sandbox, token(capabilities=["SEND_MESSAGE"])) as ws:
            await say(ws, "hello")
            await next_of(ws, "MESSAGE")
            await ws.send("not json")
            await send(ws, Action="DELETE_MESSAGE", Id="x")
            assert [(await next_of(ws, "ERROR"))["ErrorCode"] for _ in range(2)] == [400, 403]
        used.append(mint(sandbox, room, session_seconds=2))
        async with await open_socket(sandbox, used[-1]) as expiring:
            assert await closed_with(expiring) == 1000
        # Refused handshakes: reused, altered, expired, and for a deleted room.
        used.append(_altered(used[0], len(used[0]) // 2))
        used.append(mint(sandbox, room, token_seconds=0))
        for refused in (used[0], used[-2], used[-1]):
            assert await refused_status(sandbox, [refused]) == 401
        gone = ivschat.create_room()["arn"]
        used.append(mint(sandbox, gone))
        ivschat.delete_room(identifier=gone)
        assert await refused_status(sandbox, [used[-1]]) == 404
        # The client library, and control-plane errors (a wrong key, a bad request).
        async with ChatRoom(sandbox.messaging_endpoint, lambda: token(capabilities=["SEND_MESSAGE"])) as chat:
            await chat.send_message("from the client")
        with pytest.raises(ivschat.exceptions.ClientError):
            boto3.client("ivschat", endpoint_url=sandbox.control_endpoint, region_name=sandbox.region,
                         aws_access_key_id=sandbox.config.access_key_id, aws_secret_access_key="a-guess").list_rooms()
        with pytest.raises(ivschat.exceptions.ValidationException):
            ivschat.create_chat_token(roomIdentifier=room, userId="alice", sessionDurationInMinutes=181)
        secrets = _secrets(sandbox, used)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records if _from_the_sandbox(record)]
    assert any("Sec-WebSocket-Protocol" in line for line in lines), "the capture missed the handshake headers"
    leaks = [(secret[:20], line[:200]) for line in lines for secret in secrets if secret in line]
    assert leaks == []


async def test_reprs_never_show_tokens_or_keys(ivschat: Any, room: dict[str, Any]) -> None:
    response = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="alice")
    chat_token = ChatToken.from_response(response)
    with Sandbox(secret_access_key="a-secret-key-someone-chose") as sandbox:
        running = [sandbox, sandbox.config]
        local_room = sandbox.client().create_room()["arn"]
        tokens_used: list[str] = []

        def provide() -> str:
            tokens_used.append(mint(sandbox, local_room))
            return tokens_used[-1]

        async with ChatRoom(sandbox.messaging_endpoint, provide) as chat:
            running.append(chat)
            background = BackgroundChatRoom(sandbox.messaging_endpoint, provide)
            try:
                background.connect()
                running.append(background)
                shown = [text for item in running for text in (repr(item), str(item))]
            finally:
                background.close()
        secrets = _secrets(sandbox, [response["token"], *tokens_used])
    with connect_backend("sandbox", secret_access_key="a-secret-key-someone-chose") as backend:
        provider = backend.token_provider(backend.client.create_room()["arn"], "alice")
        issued = provider()
        objects = [backend, backend.sandbox, issued, chat_token, sandbox, sandbox.config]
        shown += [text for item in objects for text in (repr(item), str(item))]
        secrets += _secrets(backend.sandbox, [issued.token])  # type: ignore[arg-type]
    assert [(secret[:20], text) for text in shown for secret in secrets if secret in text] == []
