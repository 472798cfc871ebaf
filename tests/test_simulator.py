"""The audience simulator against a real sandbox: what it reports is what a listener in the room saw,
denials and rate limits are counted rather than raised, pacing at the room's rate draws no 429, and it
always ends, by itself or when stopped."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest

from ivs_widgets.backend import Backend, connect
from ivs_widgets.chat import BackgroundChatRoom, ChatMessage
from ivs_widgets.simulator import DELIVERED, DENIED, AudienceSimulator, audience_script, bot_names

#: Longest wait for something that should happen; generous so a loaded machine stays green.
TIMEOUT = 10.0
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:spoiler-filter"


@pytest.fixture
def backend() -> Iterator[Backend]:
    with connect("sandbox") as running:
        yield running


class Listener:
    """A read-only viewer in the room that hands over every message it receives."""

    def __init__(self, backend: Backend, room_arn: str) -> None:
        self.chat = BackgroundChatRoom(backend.messaging_url, backend.token_provider(room_arn, "listener"))
        self.messages: queue.Queue[ChatMessage] = queue.Queue()
        self.chat.on("message", self.messages.put)
        self.chat.connect()

    def receive(self, count: int) -> list[ChatMessage]:
        return [self.messages.get(timeout=TIMEOUT) for _ in range(count)]


def spoiler_filter(denied: list[dict[str, Any]]) -> Any:
    def review(event: dict[str, Any]) -> dict[str, str]:
        if "spoiler" in event["Content"]:
            denied.append(event)
            return {"ReviewResult": "DENY"}
        return {"ReviewResult": "ALLOW"}
    return review


def test_a_listener_receives_exactly_what_the_summary_counts_as_delivered(
        backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    denied_by_handler: list[dict[str, Any]] = []
    backend.sandbox.register_lambda(LAMBDA_ARN, spoiler_filter(denied_by_handler))  # type: ignore[union-attr]
    room = backend.client.create_room(maximumMessageRatePerSecond=100,
                                      messageReviewHandler={"uri": LAMBDA_ARN, "fallbackResult": "ALLOW"})
    listener = Listener(backend, room["arn"])
    try:
        simulator = AudienceSimulator(backend, room["arn"], bots=5, messages=150, seed=3, progress="text")
        summary = simulator.run()
        received = {message.id: message for message in listener.receive(summary.delivered)}
        assert listener.messages.empty()
    finally:
        listener.chat.close()

    flagged = [line for line in simulator.script if "spoiler" in line.content]
    assert flagged, "the script should hold messages for the handler to deny"
    assert (summary.sent, summary.denied, summary.rate_limited, summary.errors) == (150, len(flagged), 0, 0)
    assert summary.delivered == 150 - len(flagged)
    assert sorted(event["Content"] for event in denied_by_handler) == sorted(line.content for line in flagged)
    assert [r.index for r in summary.with_outcome(DENIED)] == [line.index for line in flagged]
    delivered = summary.with_outcome(DELIVERED)
    assert set(received) == {r.message_id for r in delivered}
    for result in delivered:
        message = received[result.message_id]
        assert (message.content, message.sender.user_id) == (result.content, result.user_id)
        assert message.sender.attributes == {"displayName": result.display_name}
    assert simulator.progress is not None and simulator.progress.value == simulator.progress.total == 150
    assert capsys.readouterr().err.splitlines()[-1] == f"audience: 150/150 messages ({len(flagged)} denied) · done"


def test_pacing_at_the_rooms_rate_draws_no_429(backend: Backend) -> None:
    room = backend.client.create_room(maximumMessageRatePerSecond=20)
    simulator = AudienceSimulator(backend, room["arn"], bots=3, messages=50, progress=None)
    assert simulator.rate == 20  # the room's rate unless told otherwise
    summary = simulator.run()
    assert (summary.sent, summary.delivered, summary.rate_limited, summary.errors) == (50, 50, 0, 0)


def test_rate_limited_messages_are_counted_not_raised(backend: Backend) -> None:
    room = backend.client.create_room(maximumMessageRatePerSecond=100)
    simulator = AudienceSimulator(backend, room["arn"], bots=1, messages=3, progress=None)
    # The room slows down after the simulator read its rate: the service now refuses what the pacing allowed.
    backend.client.update_room(identifier=room["arn"], maximumMessageRatePerSecond=1)
    summary = simulator.run()
    assert (summary.sent, summary.delivered, summary.rate_limited, summary.errors) == (3, 1, 2, 0)
    assert [r.error_code for r in summary.results] == [None, 429, 429]


def test_a_time_limited_run_ends_by_itself_with_a_full_widget_bar(backend: Backend) -> None:
    room = backend.client.create_room(maximumMessageRatePerSecond=100)
    simulator = AudienceSimulator(backend, room["arn"], seconds=0.5, rate=20, progress="widget")
    summary = simulator.run()
    assert (summary.sent, summary.delivered) == (10, 10)  # slots every 50 ms within half a second
    bar = simulator.progress.bar  # type: ignore[union-attr]
    assert bar.value == bar.max == 10
    assert simulator.progress.label.value == "10/10 messages · done"  # type: ignore[union-attr]


def test_stop_ends_a_run_early_and_every_sent_message_is_answered(backend: Backend) -> None:
    room = backend.client.create_room(maximumMessageRatePerSecond=100)
    listener = Listener(backend, room["arn"])
    try:
        simulator = AudienceSimulator(backend, room["arn"], messages=1000, rate=20, progress=None).start()
        listener.receive(5)
        simulator.stop()
        summary = simulator.wait(TIMEOUT)
    finally:
        listener.chat.close()
    assert 5 <= summary.sent < 1000
    assert summary.delivered == summary.sent
    assert simulator.progress is not None and simulator.progress.value == summary.sent
    assert simulator.progress.total == 1000  # a stopped run does not pretend to be complete


def test_the_logs_hold_what_the_audience_delivered(backend: Backend) -> None:
    config = backend.client.create_logging_configuration(destinationConfiguration={"s3": {"bucketName": "audience"}})
    room = backend.client.create_room(maximumMessageRatePerSecond=100, loggingConfigurationIdentifiers=[config["arn"]])
    summary = AudienceSimulator(backend, room["arn"], messages=60, seed=1, progress=None).run()
    logs = backend.chat_history(room["arn"])
    assert [m.id for m in logs.messages if m.sender.user_id == "ada"] == [
        r.message_id for r in summary.with_outcome(DELIVERED) if r.user_id == "ada"]
    assert {m.id for m in logs.messages} == {r.message_id for r in summary.results}
    unlogged = backend.client.create_room()
    with pytest.raises(ValueError, match="no logging configuration"):
        backend.chat_history(unlogged["arn"])


def test_the_script_depends_only_on_its_seed() -> None:
    users = bot_names(14)
    assert users[:2] == ["ada", "ben"] and users[12:] == ["ada2", "ben2"]
    script = audience_script(400, users, seed=5, flagged_word="frog", max_length=30)
    assert script == audience_script(400, users, seed=5, flagged_word="frog", max_length=30)
    assert script != audience_script(400, users, seed=6, flagged_word="frog", max_length=30)
    assert all(len(line.content) <= 30 for line in script)
    assert {line.user_id for line in script} <= set(users)
    flagged = [line for line in script if "frog" in line.content]
    links = [line for line in script if "https://" in line.content]
    assert 0 < len(flagged) < len(links) < 100  # about 5 % and 10 % of 400


def test_a_rate_above_the_rooms_limit_is_refused(backend: Backend) -> None:
    room = backend.client.create_room(maximumMessageRatePerSecond=10)
    with pytest.raises(ValueError, match="at most the room's 10 messages per second"):
        AudienceSimulator(backend, room["arn"], messages=1, rate=11)
    with pytest.raises(ValueError, match="how long"):
        AudienceSimulator(backend, room["arn"])


def test_stopping_before_the_first_send_sends_nothing(backend: Backend) -> None:
    room = backend.client.create_room()
    simulator = AudienceSimulator(backend, room["arn"], messages=10, progress=None)
    simulator.stop()
    assert simulator.run().sent == 0
