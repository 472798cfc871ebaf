"""The messaging handshake: only a genuine, unused, unexpired token for a live room opens a connection."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from wsutil import ALL_CAPABILITIES, barrier, join, mint, next_of, open_socket, refused_status, say

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core import tokens


async def test_token_is_echoed_as_the_selected_subprotocol(sandbox: Sandbox, ivschat: Any,
                                                           room: dict[str, Any]) -> None:
    # Browsers, Node and the official SDK fail the connection unless the server selects the token.
    token = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="alice",
                                      capabilities=["SEND_MESSAGE"])["token"]
    async with await open_socket(sandbox, token) as ws:
        assert ws.subprotocol == token
        assert ws.response.headers["Sec-WebSocket-Protocol"] == token


@pytest.mark.parametrize("subprotocols", [None, ["garbage"], ["v1.e30.AAAA"]],
                         ids=["none", "garbage", "token-shaped-but-unsigned"])
async def test_missing_or_garbage_token_is_refused_with_401(sandbox: Sandbox, room: dict[str, Any],
                                                           subprotocols: list[str] | None) -> None:
    assert await refused_status(sandbox, subprotocols) == 401


async def test_two_subprotocols_are_refused_even_if_one_is_a_good_token(sandbox: Sandbox,
                                                                        room: dict[str, Any]) -> None:
    assert await refused_status(sandbox, [mint(sandbox, room["arn"]), "chat"]) == 401


def _alter_one_byte(token: str, index: int) -> str:
    """The token with one character replaced by another valid token character."""
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1:]


@pytest.mark.parametrize("where", ["claims", "signature", "last"])
async def test_token_altered_in_one_byte_is_refused(sandbox: Sandbox, room: dict[str, Any], where: str) -> None:
    token = mint(sandbox, room["arn"])
    claims_start = token.index(".") + 1
    index = {"claims": claims_start + 10, "signature": token.rindex(".") + 5, "last": len(token) - 1}[where]
    assert await refused_status(sandbox, [_alter_one_byte(token, index)]) == 401
    # The untouched token still works: the refusal did not spend it.
    async with await open_socket(sandbox, token) as ws:
        assert ws.subprotocol == token


async def test_token_signed_with_another_key_is_refused(sandbox: Sandbox, room: dict[str, Any]) -> None:
    now = time.time()
    forged = tokens.mint(tokens.TokenClaims(room_arn=room["arn"], user_id="mallory", capabilities=ALL_CAPABILITIES,
                                            issued_at=now, token_expires_at=now + 600,
                                            session_expires_at=now + 600), tokens.new_secret())
    assert await refused_status(sandbox, [forged]) == 401


async def test_token_with_edited_claims_but_original_signature_is_refused(sandbox: Sandbox,
                                                                          room: dict[str, Any]) -> None:
    # A chatter grants itself moderator capabilities by re-encoding the claims it can read.
    prefix, body, signature = mint(sandbox, room["arn"], "alice", ("SEND_MESSAGE",)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["capabilities"] = list(ALL_CAPABILITIES)
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert await refused_status(sandbox, [f"{prefix}.{edited}.{signature}"]) == 401


async def test_expired_token_is_refused(sandbox: Sandbox, room: dict[str, Any]) -> None:
    assert await refused_status(sandbox, [mint(sandbox, room["arn"], token_seconds=0)]) == 401


async def test_token_whose_session_already_ended_is_refused(sandbox: Sandbox, room: dict[str, Any]) -> None:
    assert await refused_status(sandbox, [mint(sandbox, room["arn"], session_seconds=0)]) == 401


async def test_token_opens_one_connection_only(sandbox: Sandbox, room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"])
    async with await open_socket(sandbox, token):
        assert await refused_status(sandbox, [token]) == 401
    # Still refused once the first connection is gone: tokens are single use, not single connection.
    assert await refused_status(sandbox, [token]) == 401


async def test_token_for_a_deleted_room_is_refused_with_404(sandbox: Sandbox, ivschat: Any,
                                                            room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"])
    ivschat.delete_room(identifier=room["arn"])
    assert await refused_status(sandbox, [token]) == 404


async def test_token_for_room_a_never_joins_room_b(sandbox: Sandbox, ivschat: Any) -> None:
    room_a = ivschat.create_room(name="a")["arn"]
    room_b = ivschat.create_room(name="b")["arn"]
    async with await join(sandbox, room_a, "watcher-a") as watcher_a, \
            await join(sandbox, room_b, "watcher-b") as watcher_b:
        # The path is not a room selector: the token alone decides the room.
        for path in ("/" + room_b.rsplit("/", 1)[1], "/" + room_b):
            async with await open_socket(sandbox, mint(sandbox, room_a, "intruder"), path) as intruder:
                await say(intruder, f"via {path}")
                assert (await next_of(intruder, "MESSAGE"))["Content"] == f"via {path}"
                assert (await next_of(watcher_a, "MESSAGE"))["Content"] == f"via {path}"
        await barrier(ivschat, room_b, watcher_b)
