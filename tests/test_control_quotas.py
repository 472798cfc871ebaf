"""IVS Chat's control-plane rate quotas, over real HTTP with real boto3.

Each operation has its own sliding one-second window (CreateChatToken 200, each room operation 5,
each logging-configuration operation 3, each tagging operation 10, the live operations 100). Past it
the sandbox answers ThrottlingException / HTTP 429, which botocore's standard retry mode retries;
DeleteMessage counts API calls and WebSocket DELETE_MESSAGE requests together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from wsutil import join, next_frame, send

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core import quotas

ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=16)  # the test sees every 429 itself
RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 10}, max_pool_connections=16)


class HeldClock:
    """The quotas' clock: stopped while ``held`` (a burst lands "within one second" however loaded the
    machine is), the real monotonic clock otherwise."""

    def __init__(self) -> None:
        self.held: float | None = None

    def __call__(self) -> float:
        return time.monotonic() if self.held is None else self.held


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldClock]:
    """Sandboxes started in the test count their windows on a HeldClock."""
    held, window = HeldClock(), quotas.RateWindow
    monkeypatch.setattr(quotas, "RateWindow", lambda limit: window(limit, held))
    yield held


def burst(call: Callable[[], Any], count: int) -> tuple[int, list[ClientError]]:
    """Fire ``count`` calls at once from a pool; how many succeeded, and the errors of the others."""
    def attempt(_: int) -> ClientError | None:
        try:
            call()
        except ClientError as error:
            return error
        return None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(count)))
    errors = [r for r in results if r is not None]
    return count - len(errors), errors


def assert_throttled(errors: list[ClientError], operation: str, limit: int) -> None:
    assert errors
    for error in errors:
        response = error.response
        assert response["Error"]["Code"] == "ThrottlingException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert response["limit"] == limit
        assert operation in response["Error"]["Message"]


def test_create_chat_token_allows_200_a_second_and_standard_retries_get_through(clock: HeldClock) -> None:
    with Sandbox() as sandbox:
        client = sandbox.client(config=ONCE)
        room = client.create_room()
        clock.held = time.monotonic()  # 250 calls within one second
        allowed, errors = burst(lambda: client.create_chat_token(roomIdentifier=room["arn"], userId="u"), 250)
        assert allowed == 200
        assert_throttled(errors, "CreateChatToken", c.QUOTA_TPS_CREATE_CHAT_TOKEN)
        clock.held = None
        assert_retries_get_through(sandbox, lambda client: client.create_chat_token(roomIdentifier=room["arn"],
                                                                                  userId="u"), 250)


def test_a_room_operation_allows_5_a_second_and_standard_retries_get_through(clock: HeldClock) -> None:
    with Sandbox() as sandbox:
        client = sandbox.client(config=ONCE)
        room = client.create_room()
        clock.held = time.monotonic()
        allowed, errors = burst(lambda: client.get_room(identifier=room["arn"]), 8)
        assert allowed == 5
        assert_throttled(errors, "GetRoom", c.QUOTA_TPS_ROOM_OPERATION)
        assert errors[0].response["resourceId"] == room["id"]
        assert client.list_rooms()["rooms"][0]["arn"] == room["arn"]  # other operations have windows of their own
        clock.held = None
        assert_retries_get_through(sandbox, lambda client: client.get_room(identifier=room["arn"]), 8)


def assert_retries_get_through(sandbox: Sandbox, call: Callable[[Any], Any], count: int) -> None:
    """A client in boto3's standard retry mode gets every one of ``count`` simultaneous calls through."""
    retrying = sandbox.client(config=RETRYING)
    assert burst(lambda: call(retrying), count) == (count, [])


def test_every_documented_quota_is_enforced_by_default() -> None:
    assert Sandbox().config.quota_tps == c.QUOTA_TPS
    assert {name for name, tps in c.QUOTA_TPS.items() if tps == c.QUOTA_TPS_LOGGING_CONFIGURATION_OPERATION} == {
        "CreateLoggingConfiguration", "DeleteLoggingConfiguration", "GetLoggingConfiguration",
        "ListLoggingConfigurations", "UpdateLoggingConfiguration"}


async def test_delete_message_counts_api_calls_and_websocket_requests_together() -> None:
    with Sandbox(quota_tps={"DeleteMessage": 3}) as sandbox:
        client = sandbox.client(config=ONCE)
        room = client.create_room()
        for _ in range(2):
            client.delete_message(roomIdentifier=room["arn"], id="AbCdEfGhIjKl")
        ws = await join(sandbox, room["arn"], "mod", ("DELETE_MESSAGE",))
        try:
            await send(ws, Action="DELETE_MESSAGE", Id="AbCdEfGhIjKl", RequestId="third")
            event = await next_frame(ws)
            assert (event["Type"], event["RequestId"]) == ("EVENT", "third")
            await send(ws, Action="DELETE_MESSAGE", Id="AbCdEfGhIjKl", RequestId="fourth")
            refused = await next_frame(ws)
            assert (refused["Type"], refused["ErrorCode"], refused["RequestId"]) == ("ERROR", 429, "fourth")
        finally:
            await ws.close()
        with pytest.raises(ClientError) as excinfo:
            client.delete_message(roomIdentifier=room["arn"], id="AbCdEfGhIjKl")
        assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"


def test_the_switch_turns_every_quota_off_for_load_generators() -> None:
    with Sandbox(rate_quotas=False) as sandbox:
        client = sandbox.client(config=ONCE)
        room = client.create_room()
        assert burst(lambda: client.create_chat_token(roomIdentifier=room["arn"], userId="u"), 250) == (250, [])
        assert burst(lambda: client.get_room(identifier=room["arn"]), 20) == (20, [])
