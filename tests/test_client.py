"""The chat client against the real sandbox: fan-out, requests and their errors, and every way a
connection ends or is renewed (session expiry, dropped socket, moderator, failing provider, refused
handshake, proactive token rotation). Every wait is on an event with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from ivs_widgets.chat import (
    NOT_CONNECTED_CODE,
    TIMEOUT_CODE,
    BackgroundChatRoom,
    ChatConnectionError,
    ChatError,
    ChatErrorFrame,
    ChatMessage,
    ChatRoom,
    ChatToken,
    ConnectionState,
    DeleteMessageEvent,
    DisconnectReason,
    DisconnectUserEvent,
    Frame,
    Sender,
)
from ivs_widgets.chat.room import rotation_delay
from ivs_widgets.sandbox import Sandbox

#: Longest wait for something that should happen; generous so a loaded machine stays green.
TIMEOUT = 10.0
ALL = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")
CONNECTED, CONNECTING, DISCONNECTED = (ConnectionState.CONNECTED, ConnectionState.CONNECTING,
                                       ConnectionState.DISCONNECTED)
T = TypeVar("T")


class Tokens:
    """A token provider for one user that counts its calls (CreateChatToken's work, lifetimes in seconds).

    ``session_seconds`` and ``token_seconds`` may list the lifetimes of successive tokens; the last repeats.
    """

    def __init__(self, sandbox: Sandbox, room_arn: str, user_id: str, capabilities: Sequence[str] = ALL, *,
                 session_seconds: float | Sequence[float] = 3600.0,
                 token_seconds: float | Sequence[float | None] | None = None) -> None:
        self.sandbox, self.room_arn, self.user_id, self.capabilities = sandbox, room_arn, user_id, capabilities
        self.sessions = list(session_seconds) if isinstance(session_seconds, Sequence) else [session_seconds]
        self.lifetimes = list(token_seconds) if isinstance(token_seconds, Sequence) else [token_seconds]
        self.issued: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.issued)

    def __call__(self) -> ChatToken:
        n = self.calls
        response = self.sandbox.control.mint_token(
            self.room_arn, self.user_id, self.capabilities,
            session_seconds=self.sessions[min(n, len(self.sessions) - 1)],
            token_seconds=self.lifetimes[min(n, len(self.lifetimes) - 1)])
        self.issued.append(response["token"])
        return ChatToken.from_response(response)


class States:
    """The (state, reason) pairs a room reports, to await one by one."""

    def __init__(self, room: ChatRoom) -> None:
        self.seen: asyncio.Queue[tuple[ConnectionState, DisconnectReason | None]] = asyncio.Queue()
        room.on("state", lambda state, reason: self.seen.put_nowait((state, reason)))

    async def next(self) -> tuple[ConnectionState, DisconnectReason | None]:
        return await within(self.seen.get())


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, TIMEOUT)


def inbox(room: ChatRoom, kind: str) -> asyncio.Queue[Any]:
    received: asyncio.Queue[Any] = asyncio.Queue()
    room.on(kind, received.put_nowait)
    return received


async def frames_until(stream: AsyncIterator[Frame], last_id: str) -> list[Frame]:
    """Frames from ``stream`` up to and including the one with ``last_id``."""
    collected: list[Frame] = []
    while not collected or collected[-1].id != last_id:
        collected.append(await within(anext(stream)))
    return collected


@pytest.fixture
async def join(sandbox: Sandbox) -> AsyncIterator[Callable[..., Awaitable[ChatRoom]]]:
    """``await join(room_arn, user, capabilities, tokens=None, connect=True, **room_options)``."""
    rooms: list[ChatRoom] = []

    async def join_room(room_arn: str, user: str = "alice", capabilities: Sequence[str] = ALL, *,
                        tokens: Callable[[], Any] | None = None, connect: bool = True,
                        **options: Any) -> ChatRoom:
        room = ChatRoom(sandbox.messaging_endpoint, tokens or Tokens(sandbox, room_arn, user, capabilities),
                        **options)
        rooms.append(room)
        if connect:
            await within(room.connect())
        return room

    yield join_room
    for room in rooms:
        await within(room.disconnect())


# -- fan-out -----------------------------------------------------------------------------------
async def test_every_client_receives_each_message_including_the_senders_echo(
        ivschat: Any, room: dict[str, Any], join: Callable[..., Awaitable[ChatRoom]]) -> None:
    def create_chat_token(user: str) -> Callable[[], Any]:  # the boto3 response itself is a valid answer
        return lambda: ivschat.create_chat_token(roomIdentifier=room["arn"], userId=user,
                                                 capabilities=["SEND_MESSAGE"],
                                                 attributes={"displayName": user.title()})

    alice, bob, carol = [await join(room["arn"], tokens=create_chat_token(user)) for user in ("alice", "bob", "carol")]
    streams = [aiter(member) for member in (alice, bob, carol)]
    heard_by_bob = inbox(bob, "message")

    sent = await alice.send_message("hello", {"color": "red"})

    assert (sent.content, sent.attributes) == ("hello", {"color": "red"})
    assert sent.sender == Sender("alice", {"displayName": "Alice"})
    for stream in streams:
        assert await within(anext(stream)) == sent
    assert await within(heard_by_bob.get()) == sent

    await alice.disconnect()
    assert [frame async for frame in streams[0]] == []  # the stream ends with the connection


async def test_rooms_are_isolated(ivschat: Any, room: dict[str, Any],
                                  join: Callable[..., Awaitable[ChatRoom]]) -> None:
    other = ivschat.create_room(name="other")["arn"]
    alice = await join(room["arn"], "alice")
    bob, carol = await join(other, "bob"), await join(other, "carol")
    bob_frames = aiter(bob)

    await alice.send_message("only for the first room")
    marker = await carol.send_message("second room")

    assert await within(anext(bob_frames)) == marker  # alice's message, sent earlier, never came


# -- requests ----------------------------------------------------------------------------------
async def test_moderator_deletes_a_message_and_disconnects_a_user_for_good(
        sandbox: Sandbox, room: dict[str, Any], join: Callable[..., Awaitable[ChatRoom]]) -> None:
    arn = room["arn"]
    alice = await join(arn, "alice", ["SEND_MESSAGE"])
    moderator = await join(arn, "moderator", ["DELETE_MESSAGE", "DISCONNECT_USER"])
    bob_tokens = Tokens(sandbox, arn, "bob")
    bob = await join(arn, tokens=bob_tokens)
    bob_states = States(bob)
    deletions, kicks = inbox(alice, "message_delete"), inbox(alice, "user_disconnect")

    spam = await alice.send_message("spam")
    deleted = await moderator.delete_message(spam.id, "no spam")
    assert isinstance(deleted, DeleteMessageEvent)
    assert (deleted.message_id, deleted.reason) == (spam.id, "no spam")
    assert await within(deletions.get()) == deleted

    kicked = await moderator.disconnect_user("bob", "rude")
    assert isinstance(kicked, DisconnectUserEvent)
    assert (kicked.user_id, kicked.reason) == ("bob", "rude")
    assert await within(kicks.get()) == kicked

    assert await bob_states.next() == (DISCONNECTED, DisconnectReason.SERVER)
    assert bob_tokens.calls == 1  # no reconnect
    assert bob.disconnect_reason is DisconnectReason.SERVER
    with pytest.raises(ChatError) as refused:
        await bob.send_message("let me back in")
    assert refused.value.code == NOT_CONNECTED_CODE
    assert (await alice.send_message("still here")).content == "still here"


async def test_deleting_the_room_disconnects_with_server_disconnect(
        ivschat: Any, room: dict[str, Any], join: Callable[..., Awaitable[ChatRoom]]) -> None:
    alice = await join(room["arn"])
    states = States(alice)
    await asyncio.to_thread(ivschat.delete_room, identifier=room["arn"])
    assert await states.next() == (DISCONNECTED, DisconnectReason.SERVER)


@pytest.mark.parametrize("request_name", ["send_message", "delete_message", "disconnect_user"])
async def test_missing_capability_is_error_403(room: dict[str, Any], join: Callable[..., Awaitable[ChatRoom]],
                                               request_name: str) -> None:
    viewer = await join(room["arn"], "viewer", [])
    errors = inbox(viewer, "error")
    with pytest.raises(ChatError) as failure:
        await getattr(viewer, request_name)("x")
    assert failure.value.code == 403
    error_frame = await within(errors.get())
    assert isinstance(error_frame, ChatErrorFrame)
    assert (error_frame.error_code, error_frame.request_id) == (403, failure.value.request_id)


async def test_too_long_message_is_error_400(ivschat: Any, join: Callable[..., Awaitable[ChatRoom]]) -> None:
    alice = await join(ivschat.create_room(maximumMessageLength=5)["arn"])
    assert (await alice.send_message("12345")).content == "12345"
    with pytest.raises(ChatError) as failure:
        await alice.send_message("123456")
    assert failure.value.code == 400


async def test_messages_over_the_room_rate_are_error_429(ivschat: Any,
                                                          join: Callable[..., Awaitable[ChatRoom]]) -> None:
    alice = await join(ivschat.create_room(maximumMessageRatePerSecond=1)["arn"])
    outcomes = await asyncio.gather(*(alice.send_message(f"quick {n}") for n in range(3)), return_exceptions=True)
    assert sum(isinstance(outcome, ChatMessage) for outcome in outcomes) == 1
    assert sorted(outcome.code for outcome in outcomes if isinstance(outcome, ChatError)) == [429, 429]


async def test_requests_need_a_connection(sandbox: Sandbox, room: dict[str, Any],
                                          join: Callable[..., Awaitable[ChatRoom]]) -> None:
    alice = await join(room["arn"], connect=False)
    with pytest.raises(ChatError, match="connect") as failure:
        await alice.send_message("too early")
    assert failure.value.code == NOT_CONNECTED_CODE
    await alice.connect()
    await alice.disconnect()
    with pytest.raises(ChatError) as failure:
        await alice.delete_message("abc")
    assert failure.value.code == NOT_CONNECTED_CODE


async def test_unanswered_request_times_out_and_a_late_answer_is_still_delivered(
        sandbox: Sandbox, ivschat: Any, join: Callable[..., Awaitable[ChatRoom]]) -> None:
    lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:slow"

    async def slow_review(event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(TIMEOUT)  # the service gives up after 200 ms and applies the ALLOW fallback
        return {"ReviewResult": "DENY"}

    sandbox.register_lambda(lambda_arn, slow_review)
    arn = ivschat.create_room(messageReviewHandler={"uri": lambda_arn, "fallbackResult": "ALLOW"})["arn"]
    alice = await join(arn, request_timeout=0.05)  # shorter than the review: the answer cannot be in time
    messages = inbox(alice, "message")
    with pytest.raises(ChatError) as failure:
        await alice.send_message("slow")
    assert failure.value.code == TIMEOUT_CODE
    late = await within(messages.get())
    assert (late.content, late.request_id) == ("slow", failure.value.request_id)


# -- connection lifecycle ----------------------------------------------------------------------
async def test_session_expiry_reconnects_with_a_fresh_token(
        sandbox: Sandbox, room: dict[str, Any], join: Callable[..., Awaitable[ChatRoom]]) -> None:
    tokens = Tokens(sandbox, room["arn"], "alice", session_seconds=[2, 3600])
    alice = await join(room["arn"], tokens=tokens)
    states, errors = States(alice), inbox(alice, "error")
    bob = await join(room["arn"], "bob")

    assert await states.next() == (CONNECTING, None)
    assert (await within(errors.get())).error_code == 401
    assert await states.next() == (CONNECTED, None)
    assert tokens.calls == 2 and tokens.issued[0] != tokens.issued[1]

    frames_after = aiter(alice)
    sent = await bob.send_message("welcome back")
    assert await within(anext(frames_after)) == sent
    assert (await alice.send_message("thanks")).content == "thanks"


async def test_dropped_connection_reconnects(sandbox: Sandbox, room: dict[str, Any],
                                             join: Callable[..., Awaitable[ChatRoom]]) -> None:
    tokens = Tokens(sandbox, room["arn"], "alice")
    alice = await join(room["arn"], tokens=tokens)
    states = States(alice)
    bob = await join(room["arn"], "bob")

    async def drop_alice() -> None:  # no close frame: like a network failure
        for connection in sandbox.messaging.connections(room["arn"]):
            if connection.claims.user_id == "alice":
                connection.transport.abort()

    sandbox.run(drop_alice())
    assert await states.next() == (CONNECTING, None)
    assert await states.next() == (CONNECTED, None)
    assert tokens.calls == 2

    frames_after = aiter(alice)
    sent = await bob.send_message("you are back")
    assert await within(anext(frames_after)) == sent


@pytest.mark.parametrize("attempts", [3, 1])
@pytest.mark.parametrize("asynchronous", [False, True])
async def test_failing_token_provider_ends_with_fetch_token_error(sandbox: Sandbox, attempts: int,
                                                                  asynchronous: bool) -> None:
    calls: list[int] = []

    def fail() -> ChatToken:
        calls.append(1)
        raise RuntimeError("no token for you")

    async def fail_async() -> ChatToken:
        return fail()

    room = ChatRoom(sandbox.messaging_endpoint, fail_async if asynchronous else fail, max_reconnect_attempts=attempts)
    states = States(room)
    with pytest.raises(ChatConnectionError) as failure:
        await within(room.connect())
    assert failure.value.reason is DisconnectReason.FETCH_TOKEN_ERROR
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert len(calls) == 1 + attempts
    assert [await states.next(), await states.next()] == [(CONNECTING, None),
                                                          (DISCONNECTED, DisconnectReason.FETCH_TOKEN_ERROR)]


@pytest.mark.parametrize("token", ["v1.forged.token", "not a valid header value"])
async def test_refused_handshake_retries_then_ends_with_socket_error(sandbox: Sandbox, token: str) -> None:
    calls: list[str] = []
    room = ChatRoom(sandbox.messaging_endpoint, lambda: calls.append(token) or token)
    states = States(room)
    with pytest.raises(ChatConnectionError) as failure:
        await within(room.connect())
    assert failure.value.reason is DisconnectReason.SOCKET_ERROR
    assert len(calls) == 4  # a fresh token for each attempt
    assert [await states.next(), await states.next()] == [(CONNECTING, None),
                                                          (DISCONNECTED, DisconnectReason.SOCKET_ERROR)]


async def test_disconnect_while_connecting_releases_connect(sandbox: Sandbox, room: dict[str, Any]) -> None:
    release = threading.Event()
    tokens = Tokens(sandbox, room["arn"], "alice")

    def slow_provider() -> ChatToken:
        release.wait(TIMEOUT)
        return tokens()

    chat = ChatRoom(sandbox.messaging_endpoint, slow_provider)
    states = States(chat)
    connecting = asyncio.ensure_future(chat.connect())
    try:
        assert await states.next() == (CONNECTING, None)
        await within(chat.disconnect())
    finally:
        release.set()
    with pytest.raises(ChatConnectionError) as failure:
        await within(connecting)
    assert failure.value.reason is DisconnectReason.CLIENT
    assert await states.next() == (DISCONNECTED, DisconnectReason.CLIENT)


def test_rotation_is_scheduled_before_the_token_expires() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert rotation_delay(now + timedelta(hours=1), now) == 59 * 60
    assert rotation_delay(now + timedelta(seconds=50), now) == 20
    assert rotation_delay(now + timedelta(seconds=10), now) == 0


async def test_token_rotation_switches_connections_without_duplicates_or_gaps(
        sandbox: Sandbox, ivschat: Any, join: Callable[..., Awaitable[ChatRoom]]) -> None:
    arn = ivschat.create_room(maximumMessageRatePerSecond=100)["arn"]
    # A 2-second token is already inside the last 30 s: each connection starts its successor at once.
    tokens = Tokens(sandbox, arn, "viewer", token_seconds=2)
    viewer = await join(arn, tokens=tokens)
    states = States(viewer)
    sender = await join(arn, "sender")
    seen = aiter(viewer)

    delivered: list[str] = []
    while tokens.calls < 4 and len(delivered) < 5000:  # the 4th token means the 2nd switch is done
        author = viewer if len(delivered) % 2 else sender  # the rotating side sends too
        try:
            delivered.append((await author.send_message(f"#{len(delivered)}")).id)
        except ChatError as error:
            assert error.code == 429  # the room's rate: such a message is never delivered
    assert tokens.calls >= 4
    # An event from the control plane marks the end (a last message could meet the rate limit).
    end = (await asyncio.to_thread(ivschat.send_event, roomIdentifier=arn, eventName="test:end"))["id"]

    received = [frame.id for frame in await frames_until(seen, end) if isinstance(frame, ChatMessage)]
    assert received == delivered
    assert states.seen.empty()  # rotation never left the connected state


# -- the blocking facade -----------------------------------------------------------------------
def test_background_room_from_plain_code_runs_callbacks_on_its_thread(sandbox: Sandbox,
                                                                      room: dict[str, Any]) -> None:
    heard: queue.Queue[tuple[ChatMessage, threading.Thread]] = queue.Queue()
    with BackgroundChatRoom(sandbox.messaging_endpoint, Tokens(sandbox, room["arn"], "alice")) as chat:
        assert chat.state is CONNECTED
        chat.on("message", lambda message: heard.put((message, threading.current_thread())))
        sent = chat.send_message("hi", {"from": "sync code"})
        message, thread = heard.get(timeout=TIMEOUT)
        assert message == sent and thread is not threading.current_thread()
        assert chat.delete_message(sent.id, "oops").message_id == sent.id
        assert chat.disconnect_user("nobody").user_id == "nobody"
    assert chat.state is DISCONNECTED and chat.disconnect_reason is DisconnectReason.CLIENT
    chat.close()  # twice is fine


async def test_background_room_blocks_safely_inside_a_running_loop(sandbox: Sandbox, room: dict[str, Any]) -> None:
    chat = BackgroundChatRoom(sandbox.messaging_endpoint, Tokens(sandbox, room["arn"], "alice"), timeout=TIMEOUT)
    try:
        chat.connect()  # the caller's loop is running: the room does not use it
        refused: queue.Queue[BaseException] = queue.Queue()

        def reply_from_callback(message: ChatMessage) -> None:
            try:
                chat.send_message("re: " + message.content)
            except RuntimeError as error:
                refused.put(error)

        chat.on("message", reply_from_callback)
        chat.send_message("hello")
        assert "deadlock" in str(refused.get(timeout=TIMEOUT))
    finally:
        chat.close()


def test_background_connect_timeout_stops_trying(sandbox: Sandbox, room: dict[str, Any]) -> None:
    release = threading.Event()
    tokens = Tokens(sandbox, room["arn"], "alice")

    def stuck_provider() -> ChatToken:
        release.wait(TIMEOUT)
        return tokens()

    chat = BackgroundChatRoom(sandbox.messaging_endpoint, stuck_provider)
    ended: queue.Queue[Any] = queue.Queue()
    chat.on("state", lambda state, reason: ended.put(reason) if state is DISCONNECTED else None)
    try:
        with pytest.raises(TimeoutError):
            chat.connect(timeout=0.2)
        assert ended.get(timeout=TIMEOUT) is DisconnectReason.CLIENT
    finally:
        release.set()
        chat.close()
    assert tokens.calls <= 1 and chat.state is DISCONNECTED
