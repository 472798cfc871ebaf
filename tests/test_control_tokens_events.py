"""CreateChatToken, SendEvent, DeleteMessage and DisconnectUser through real boto3 (no WebSocket here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.tokens import TokenError, verify

ID = re.compile(r"[A-Za-z0-9]{%d}" % c.ID_LENGTH)
#: RFC 7230 ``token``: what a WebSocket subprotocol (where the chat token travels) may contain.
TCHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Expiry times come back in whole seconds, cut down: up to a second before the measured window's end.
SECOND = timedelta(seconds=1)


def _issue(ivschat: Any, room_arn: str, **kwargs: Any) -> tuple[datetime, dict[str, Any], datetime]:
    """A CreateChatToken response with the wall-clock window it was issued in."""
    before = datetime.now(UTC)
    token = ivschat.create_chat_token(roomIdentifier=room_arn, userId="viewer", **kwargs)
    return before, token, datetime.now(UTC)


def test_chat_token_is_made_of_http_token_characters(ivschat: Any, room: dict[str, Any]) -> None:
    tokens = {ivschat.create_chat_token(roomIdentifier=room["arn"], userId=user,
                                        capabilities=["SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER"],
                                        attributes={"displayName": "Zoë 🎉", "x": "/=+ "})["token"]
              for user in ("alice", "bob", "ünïcode user")}
    assert len(tokens) == 3
    for token in tokens:
        assert TCHARS.fullmatch(token), token


def test_token_and_session_expiry_default_to_an_hour(ivschat: Any, room: dict[str, Any]) -> None:
    before, token, after = _issue(ivschat, room["arn"])
    assert token["ResponseMetadata"]["HTTPStatusCode"] == 200
    lifetime = timedelta(seconds=c.DEFAULT_TOKEN_LIFETIME_SECONDS)
    session = timedelta(minutes=c.DEFAULT_SESSION_DURATION_MINUTES)
    assert lifetime == timedelta(minutes=60)
    assert before + lifetime - SECOND <= token["tokenExpirationTime"] <= after + lifetime
    assert before + session - SECOND <= token["sessionExpirationTime"] <= after + session


@pytest.mark.parametrize("minutes", [1, 30, 180])
def test_session_expiry_is_issue_time_plus_session_duration(ivschat: Any, room: dict[str, Any],
                                                            minutes: int) -> None:
    before, token, after = _issue(ivschat, room["arn"], sessionDurationInMinutes=minutes)
    duration = timedelta(minutes=minutes)
    assert before + duration - SECOND <= token["sessionExpirationTime"] <= after + duration
    lifetime = timedelta(seconds=c.DEFAULT_TOKEN_LIFETIME_SECONDS)
    gap = token["sessionExpirationTime"] - token["tokenExpirationTime"]
    assert gap == duration - lifetime


def test_expiry_times_are_whole_seconds_and_the_token_expires_exactly_then(sandbox: Sandbox, ivschat: Any,
                                                                           room: dict[str, Any]) -> None:
    """A real CreateChatToken answer states ``…:35.000Z``; the token must not outlive what it states."""
    answer = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="viewer")
    stated_token, stated_session = answer["tokenExpirationTime"], answer["sessionExpirationTime"]
    assert stated_token.microsecond == stated_session.microsecond == 0
    expires = stated_token.timestamp()
    claims = verify(answer["token"], sandbox.state.token_secret, now=expires - 0.001)
    assert (claims.token_expires_at, claims.session_expires_at) == (expires, stated_session.timestamp())
    with pytest.raises(TokenError, match="expired"):
        verify(answer["token"], sandbox.state.token_secret, now=expires)


def test_token_lifetime_is_a_setting() -> None:
    with Sandbox(token_lifetime_seconds=90) as sandbox:
        ivschat = sandbox.client()
        room = ivschat.create_room()
        before, token, after = _issue(ivschat, room["arn"], sessionDurationInMinutes=5)
    assert before + timedelta(seconds=90) - SECOND <= token["tokenExpirationTime"] <= after + timedelta(seconds=90)
    assert before + timedelta(minutes=5) - SECOND <= token["sessionExpirationTime"] <= after + timedelta(minutes=5)


def test_every_token_is_different(ivschat: Any, room: dict[str, Any]) -> None:
    issued = {ivschat.create_chat_token(roomIdentifier=room["arn"], userId="same")["token"] for _ in range(5)}
    assert len(issued) == 5


def test_send_event_returns_an_event_id(ivschat: Any, room: dict[str, Any]) -> None:
    sent = ivschat.send_event(roomIdentifier=room["arn"], eventName="app:poll", attributes={"q": "yes?"})
    assert sent["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ID.fullmatch(sent["id"])
    again = ivschat.send_event(roomIdentifier=room["arn"], eventName="app:poll")
    assert ID.fullmatch(again["id"]) and again["id"] != sent["id"]


def test_delete_message_returns_an_event_id(ivschat: Any, room: dict[str, Any]) -> None:
    deleted = ivschat.delete_message(roomIdentifier=room["arn"], id="AbCdEfGhIjKl", reason="spam")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ID.fullmatch(deleted["id"])
    assert deleted["id"] != "AbCdEfGhIjKl"


def test_disconnect_user_answers_empty_200(ivschat: Any, room: dict[str, Any]) -> None:
    answer = ivschat.disconnect_user(roomIdentifier=room["arn"], userId="nobody-connected", reason="bye")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(answer) == {"ResponseMetadata"}


LIVE_CALLS: dict[str, Callable[[Any, str], Any]] = {
    "SendEvent": lambda ivschat, arn: ivschat.send_event(roomIdentifier=arn, eventName="e"),
    "DeleteMessage": lambda ivschat, arn: ivschat.delete_message(roomIdentifier=arn, id="AbCdEfGhIjKl"),
    "DisconnectUser": lambda ivschat, arn: ivschat.disconnect_user(roomIdentifier=arn, userId="u"),
}


@pytest.mark.parametrize("operation", LIVE_CALLS)
def test_live_operations_on_a_missing_room_are_not_found(ivschat: Any, operation: str) -> None:
    missing = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:room/AbCdEfGhIjKl"
    with pytest.raises(ClientError) as excinfo:
        LIVE_CALLS[operation](ivschat, missing)
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["resourceId"] == "AbCdEfGhIjKl"


@pytest.mark.parametrize("operation", LIVE_CALLS)
def test_live_operations_are_throttled_past_their_quota(operation: str) -> None:
    limit = 2
    with Sandbox(quota_tps={name: limit for name in LIVE_CALLS}) as sandbox:
        # One attempt in all, so the test sees the 429 itself (botocore's "max_attempts" counts retries).
        ivschat = sandbox.client(config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        room = ivschat.create_room()
        call = LIVE_CALLS[operation]
        for _ in range(limit):
            call(ivschat, room["arn"])
        with pytest.raises(ClientError) as excinfo:
            call(ivschat, room["arn"])
        response = excinfo.value.response
        assert response["Error"]["Code"] == "ThrottlingException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert response["ResponseMetadata"]["RetryAttempts"] == 0
        assert response["limit"] == limit
        assert response["resourceId"] == room["id"]
        assert response["resourceType"] == "ROOM"
        assert operation in response["Error"]["Message"]
        # Each operation has its own quota: the others still answer.
        for other, other_call in LIVE_CALLS.items():
            if other != operation:
                other_call(ivschat, room["arn"])
