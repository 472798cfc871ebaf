"""A workshop as it runs for real: ``ivs-sandbox --workshop`` in its own process, 50 attendees over TLS.

Everything is configured from what the process prints: the presenter uses its ``export`` lines,
attendees only the ``url:``, ``room code:`` and ``fingerprint:`` lines they were shown. Attendees
join with ``workshop.join`` and chat through ``Attendee.chat_room()``, all on the test's loop; the
sandbox is on loopback only (never ``--network``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from boto3.session import Session
from botocore import UNSIGNED, xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from sandbox_process import IVS_SANDBOX, STOP_TIMEOUT, Running, shell_environment

from ivs_widgets import workshop
from ivs_widgets.chat import (
    ChatError,
    ChatEvent,
    ChatMessage,
    ChatRoom,
    ChatToken,
    ConnectionState,
    DeleteMessageEvent,
    DisconnectReason,
    DisconnectUserEvent,
)
from ivs_widgets.protocol import facts as c

#: Longest wait for something that should happen; generous so a loaded machine stays green.
TIMEOUT = 15.0
ATTENDEES = 50
MODEL = botocore.session.get_session().get_service_model("ivschat")
ALL_CAPABILITIES = ["SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER"]


# -- the sandbox process and the presenter ----------------------------------------------------
@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """``launch(*options)``: ``ivs-sandbox --workshop`` on loopback, attendees allowed SEND_MESSAGE."""
    started: list[Running] = []

    def run(*options: str) -> Running:
        options = options or ("--port", "0")
        # TMPDIR: the CA file it exports lives in its temporary folder; keep that in the test's.
        started.append(Running([IVS_SANDBOX, "--workshop", "--attendee-capabilities", "SEND_MESSAGE", *options],
                               env={**os.environ, "TMPDIR": str(tmp_path)}))
        return started[-1]

    yield run
    for running in started:
        running.kill()


def presenter_of(running: Running) -> workshop.Presenter:
    """The presenter's side, from the printed export lines only."""
    env = running.environment
    return workshop.Presenter(env["AWS_ENDPOINT_URL_IVSCHAT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                              env["AWS_DEFAULT_REGION"], ca_file=env["AWS_CA_BUNDLE"])


def workshop_room(presenter: workshop.Presenter, code: str) -> str:
    return next(invite["roomArn"] for invite in presenter.invites() if invite["code"] == code)


def attend(running: Running, name: str) -> workshop.Attendee:
    """What an attendee types: the shared URL, room code and fingerprint, and a name."""
    return workshop.join(running.url, running.room_code, name, fingerprint=running.fingerprint)


# -- attendees in the room ----------------------------------------------------------------------
class Seat:
    """One attendee's ChatRoom, and every frame and state change it was handed, in order."""

    def __init__(self, attendee: workshop.Attendee) -> None:
        self.attendee = attendee
        self.room = attendee.chat_room()
        self.frames: list[Any] = []
        self.states: list[tuple[ConnectionState, DisconnectReason | None]] = []
        self._changed = asyncio.Event()
        for kind in ("message", "event", "message_delete", "user_disconnect", "error"):
            self.room.on(kind, self._record)
        self.room.on("state", lambda state, reason: self._record((state, reason)))

    def _record(self, item: Any) -> None:
        (self.states if isinstance(item, tuple) else self.frames).append(item)
        self._changed.set()

    def messages(self) -> list[ChatMessage]:
        return [frame for frame in self.frames if isinstance(frame, ChatMessage)]

    def got(self, frame_id: str) -> bool:
        return any(frame.id == frame_id for frame in self.frames)

    @property
    def disconnected_by_server(self) -> bool:
        return self.states[-1:] == [(ConnectionState.DISCONNECTED, DisconnectReason.SERVER)]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for ``condition`` to hold; the callbacks that change it run while this awaits."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{self.attendee.display_name}: no {what} within {TIMEOUT} s; "
                                 f"frames {self.frames}, states {self.states}") from None


async def seated(running: Running, count: int = ATTENDEES) -> list[Seat]:
    """``count`` attendees joined and connected to the workshop room (joins run on worker threads)."""
    attendees = await asyncio.gather(*(asyncio.to_thread(attend, running, f"Attendee {n:02}") for n in range(count)))
    seats = [Seat(attendee) for attendee in attendees]
    await asyncio.gather(*(seat.room.connect() for seat in seats))
    return seats


async def everyone(seats: list[Seat], condition: Callable[[Seat], bool], what: str) -> None:
    await asyncio.gather(*(seat.until(lambda seat=seat: condition(seat), what) for seat in seats))


async def leave(seats: list[Seat]) -> None:
    await asyncio.gather(*(seat.room.disconnect() for seat in seats))


async def barrier(presenter: workshop.Presenter, room_arn: str, seats: list[Seat]) -> str:
    """A presenter event every seat must receive: whatever was on its way to them arrived before it."""
    event_id = (await asyncio.to_thread(presenter.client.send_event, roomIdentifier=room_arn,
                                        eventName="test:barrier"))["id"]
    await everyone(seats, lambda seat: seat.got(event_id), "barrier event")
    return event_id


# -- the "done when": 50 attendees ----------------------------------------------------------
async def test_fifty_attendees_each_receive_every_message_once_in_the_same_order(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    room_arn = workshop_room(presenter, running.room_code)
    # Twenty messages in about no time exceed the default 10 per second: the presenter raises the limit.
    fastest = MODEL.shape_for("UpdateRoomRequest").members["maximumMessageRatePerSecond"].metadata["max"]
    presenter.client.update_room(identifier=room_arn, maximumMessageRatePerSecond=fastest)
    seats = await seated(running)
    assert len({seat.attendee.user_id for seat in seats}) == ATTENDEES

    async def speak(seat: Seat) -> list[ChatMessage]:
        return [await seat.room.send_message(f"{seat.attendee.display_name} says {n}") for n in range(2)]

    senders = seats[::5]  # ten of them, all at once
    echoes = [message for said in await asyncio.gather(*(speak(seat) for seat in senders)) for message in said]
    sent = {message.id for message in echoes}
    assert len(sent) == 2 * len(senders)
    for seat, said in zip(senders, (echoes[i:i + 2] for i in range(0, len(echoes), 2))):
        assert {m.sender.user_id for m in said} == {seat.attendee.user_id}
        assert {m.sender.attributes["displayName"] for m in said} == {seat.attendee.display_name}

    await everyone(seats, lambda seat: len(seat.messages()) >= len(sent), "messages")
    await barrier(presenter, room_arn, seats)  # no late copy is still on its way
    order = [message.id for message in seats[0].messages()]
    assert set(order) == sent and len(order) == len(sent)
    for seat in seats:
        assert [message.id for message in seat.messages()] == order
        assert not any(frame for frame in seat.frames if frame.type == "ERROR")
    assert sum(presenter.activity()["rooms"][0]["messageRate"]) == len(sent)
    await leave(seats)


async def test_the_presenters_events_deletions_and_disconnects_reach_every_attendee(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    room_arn = workshop_room(presenter, running.room_code)
    seats = await seated(running)

    event_id = (await asyncio.to_thread(presenter.client.send_event, roomIdentifier=room_arn,
                                        eventName="workshop:quiz", attributes={"question": "1"}))["id"]
    await everyone(seats, lambda seat: seat.got(event_id), "SendEvent")
    for seat in seats:
        event = next(frame for frame in seat.frames if frame.id == event_id)
        assert type(event) is ChatEvent and (event.event_name, event.attributes) == ("workshop:quiz", {"question": "1"})

    said = await seats[1].room.send_message("something to take back")
    await asyncio.to_thread(presenter.client.delete_message, roomIdentifier=room_arn, id=said.id, reason="oops")
    await everyone(seats, lambda seat: any(isinstance(f, DeleteMessageEvent) and f.message_id == said.id
                                           for f in seat.frames), "aws:DELETE_MESSAGE")

    leaving, staying = seats[0], seats[1:]
    await asyncio.to_thread(presenter.client.disconnect_user, roomIdentifier=room_arn,
                            userId=leaving.attendee.user_id, reason="time out")
    await everyone(seats, lambda seat: any(isinstance(f, DisconnectUserEvent) and f.user_id == leaving.attendee.user_id
                                           for f in seat.frames), "aws:DISCONNECT_USER")
    await leaving.until(lambda: leaving.disconnected_by_server, "disconnection")

    # The others stay connected: they still get the presenter's events and each other's messages.
    after = await barrier(presenter, room_arn, staying)
    message = await staying[-1].room.send_message("still here")
    await everyone(staying, lambda seat: seat.got(message.id), "message after the disconnect")
    assert all(seat.room.state is ConnectionState.CONNECTED for seat in staying)
    assert not leaving.got(after) and not leaving.got(message.id)
    connected = {user["userId"] for user in presenter.activity()["rooms"][0]["users"]}
    assert connected == {seat.attendee.user_id for seat in staying}
    await leave(staying)


async def test_closing_the_room_disconnects_everyone_and_its_code_lets_nobody_back_in(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    seats = await seated(running)

    closed = await asyncio.to_thread(presenter.close_room, running.room_code)
    assert closed["open"] is False
    await everyone(seats, lambda seat: seat.disconnected_by_server, "disconnection")

    for rejoin in (lambda: attend(running, "Latecomer"), seats[0].attendee.token_provider()):
        with pytest.raises(workshop.WorkshopError) as refused:
            rejoin()
        assert (refused.value.status, refused.value.code) == (403, "AccessDeniedException")
    # The room itself stays the presenter's.
    assert [room["name"] for room in presenter.client.list_rooms()["rooms"]] == ["Workshop"]


async def test_ivs_sandbox_reset_from_the_presenters_shell_empties_the_running_sandbox(
        launch: Any, tmp_path: Path) -> None:
    running = launch()
    presenter = presenter_of(running)
    seats = await seated(running)

    reset = await asyncio.to_thread(subprocess.run, [IVS_SANDBOX, "reset"], capture_output=True, text=True,
                                    env=shell_environment(running.environment, tmp_path), timeout=STOP_TIMEOUT)
    assert reset.returncode == 0, reset.stderr
    assert running.url in reset.stdout

    await everyone(seats, lambda seat: seat.disconnected_by_server, "disconnection")
    assert presenter.client.list_rooms()["rooms"] == [] and presenter.invites() == []
    assert presenter.activity()["rooms"] == []
    for rejoin in (lambda: attend(running, "Latecomer"), seats[0].attendee.token_provider()):
        with pytest.raises(workshop.WorkshopError) as refused:
            rejoin()
        assert (refused.value.status, refused.value.code) == (404, "ResourceNotFoundException")


# -- attendees hold no control-plane rights ---------------------------------------------------
def required_input(shape: Any, target: str) -> dict[str, Any]:
    """Every required member of ``shape``, naming the presenter's resources: accepted, the call would
    change them (or, for CreateRoom and CreateLoggingConfiguration, add one)."""
    return {name: _value(name, shape.members[name], target) for name in shape.required_members}


def _value(name: str, shape: Any, target: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return required_input(shape, target)
    if kind == "list":
        return [_value(name, shape.member, target)]
    if kind == "map":
        return {"owner": "attendee"}
    if kind in ("integer", "long"):
        return shape.metadata.get("min", 1)
    if kind == "boolean":
        return True
    return target if name in ("identifier", "roomIdentifier", "resourceArn") else "attendee"


def control_plane_snapshot(presenter: workshop.Presenter, room_arn: str) -> Any:
    client = presenter.client
    room = {k: v for k, v in client.get_room(identifier=room_arn).items() if k != "ResponseMetadata"}
    return (client.list_rooms()["rooms"], room, client.list_logging_configurations()["loggingConfigurations"],
            client.list_tags_for_resource(resourceArn=room_arn)["tags"])


@pytest.mark.parametrize(("credentials", "expected"), [
    ({"aws_access_key_id": c.SANDBOX_ACCESS_KEY_ID, "aws_secret_access_key": c.SANDBOX_SECRET_ACCESS_KEY},
     "UnrecognizedClientException"),
    ({"config": Config(signature_version=UNSIGNED)}, "MissingAuthenticationTokenException"),
], ids=["public-sandbox-credentials", "unsigned"])
async def test_attendees_are_refused_every_control_plane_operation(
        launch: Any, credentials: dict[str, Any], expected: str) -> None:
    running = launch()
    presenter = presenter_of(running)
    room_arn = workshop_room(presenter, running.room_code)
    logging_arn = presenter.client.create_logging_configuration(
        destinationConfiguration={"s3": {"bucketName": "workshop-logs"}})["arn"]
    before = control_plane_snapshot(presenter, room_arn)
    [seat] = await seated(running, 1)

    config = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
    if "config" in credentials:
        config = config.merge(credentials.pop("config"))
    attendee = Session().client("ivschat", endpoint_url=running.url, region_name=c.SANDBOX_REGION,
                                verify=running.environment["AWS_CA_BUNDLE"], config=config, **credentials)
    for operation in MODEL.operation_names:
        target = logging_arn if "LoggingConfiguration" in operation else room_arn
        params = required_input(MODEL.operation_model(operation).input_shape, target)
        with pytest.raises(ClientError) as refused:
            getattr(attendee, xform_name(operation))(**params)
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (expected, 403), operation

    assert control_plane_snapshot(presenter, room_arn) == before
    # SendEvent, DeleteMessage and DisconnectUser reached nobody: the next frame is the presenter's.
    event_id = await barrier(presenter, room_arn, [seat])
    assert [frame.id for frame in seat.frames] == [event_id]
    assert seat.room.state is ConnectionState.CONNECTED
    await leave([seat])


def unsigned(url: str, method: str, path: str, ca_file: str) -> tuple[int, str]:
    """A /workshop request as anyone on the network can send it: status and error name."""
    request = urllib.request.Request(f"{url}/workshop/{path}", method=method,
                                     data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    context = workshop.client_context(Path(ca_file).read_bytes())
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["__type"]


def test_the_presenters_workshop_routes_refuse_anyone_else(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    env = running.environment
    room_arn = workshop_room(presenter, running.room_code)
    invites, rooms = presenter.invites(), presenter.client.list_rooms()["rooms"]
    code = running.room_code

    routes = [("POST", "rooms"), ("GET", "rooms"), ("POST", f"rooms/{code}/close"), ("GET", "activity"),
              ("POST", "reset")]
    for method, path in routes:
        assert unsigned(running.url, method, path, env["AWS_CA_BUNDLE"]) == (403, "MissingAuthenticationTokenException")

    impostors = {
        "UnrecognizedClientException": workshop.Presenter(running.url, c.SANDBOX_ACCESS_KEY_ID,
                                                          c.SANDBOX_SECRET_ACCESS_KEY, ca_file=env["AWS_CA_BUNDLE"]),
        "InvalidSignatureException": workshop.Presenter(running.url, env["AWS_ACCESS_KEY_ID"], "a guessed secret",
                                                        ca_file=env["AWS_CA_BUNDLE"]),
    }
    for expected, impostor in impostors.items():
        for action in (lambda: impostor.open_room(room_arn, ALL_CAPABILITIES), impostor.invites,  # noqa: B023
                       lambda: impostor.close_room(code), impostor.activity, impostor.reset):  # noqa: B023
            with pytest.raises(workshop.WorkshopError) as refused:
                action()
            assert (refused.value.status, refused.value.code) == (403, expected)

    assert presenter.invites() == invites and presenter.client.list_rooms()["rooms"] == rooms
    attend(running, "Still welcome")  # the room is still open


# -- attendees get only what the presenter gave -------------------------------------------------
def raw_join(running: Running, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /workshop/join with any body (what a modified client could send)."""
    context = workshop.trust(running.url, running.fingerprint)
    request = urllib.request.Request(f"{running.url}/workshop/join", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_attendees_cannot_use_or_obtain_capabilities_they_were_not_given(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    room_arn = workshop_room(presenter, running.room_code)
    [seat, other] = await seated(running, 2)
    said = await other.room.send_message("mine")

    with pytest.raises(ChatError) as deleting:
        await seat.room.delete_message(said.id)
    with pytest.raises(ChatError) as kicking:
        await seat.room.disconnect_user(other.attendee.user_id)
    assert deleting.value.code == kicking.value.code == 403

    # Asking for more in the join request gets the invite's capabilities and nothing else.
    status, greedy = raw_join(running, {"code": running.room_code, "displayName": "Greedy",
                                        "capabilities": ALL_CAPABILITIES, "attributes": {"role": "moderator"}})
    assert status == 200 and greedy["capabilities"] == ["SEND_MESSAGE"]
    context = workshop.trust(running.url, running.fingerprint)
    greedy_room = ChatRoom(greedy["messagingEndpoint"], lambda: ChatToken.from_response(greedy), ssl=context)
    await greedy_room.connect()
    for request in (greedy_room.delete_message(said.id), greedy_room.disconnect_user(other.attendee.user_id)):
        with pytest.raises(ChatError) as refused:
            await request
        assert refused.value.code == 403
    greedy_said = await greedy_room.send_message("hello")
    assert greedy_said.sender.attributes == {"displayName": "Greedy"}
    await greedy_room.disconnect()

    # A seat proves one user id only.
    status, answer = raw_join(running, {"code": running.room_code, "displayName": "Impostor",
                                        "userId": other.attendee.user_id, "seat": greedy["seat"]})
    assert (status, answer["__type"]) == (403, "AccessDeniedException")
    # Nothing of that reached the room, and the others are still there.
    await barrier(presenter, room_arn, [seat, other])
    assert [f.id for f in other.frames if f.type != "EVENT"] == [said.id, greedy_said.id]
    await leave([seat, other])


def test_a_room_code_mints_no_more_tokens_than_the_presenter_allowed(launch: Any) -> None:
    running = launch()
    presenter = presenter_of(running)
    small = presenter.client.create_room(name="small-group")
    invite = presenter.open_room(small["arn"], max_tokens=2)

    ada = workshop.join(running.url, invite["code"], "Ada", fingerprint=running.fingerprint)
    workshop.join(running.url, invite["code"], "Ben", fingerprint=running.fingerprint)
    tokens = ada.token_provider()
    tokens()  # the token join returned: no new one minted
    for exhausted in (lambda: workshop.join(running.url, invite["code"], "Cy", fingerprint=running.fingerprint),
                      tokens):
        with pytest.raises(workshop.WorkshopError) as refused:
            exhausted()
        assert (refused.value.status, refused.value.code) == (402, "ServiceQuotaExceededException")
    assert [i["tokensMinted"] for i in presenter.invites() if i["code"] == invite["code"]] == [2]
    attend(running, "Still welcome")  # the workshop room's own code has its own limit


# -- a restart with --state -------------------------------------------------------------------------
async def test_a_restart_with_state_keeps_the_code_the_fingerprint_credentials_and_seats(
        launch: Any, tmp_path: Path) -> None:
    state = str(tmp_path / "workshop.sqlite")
    first = launch("--port", "0", "--state", state)
    [seat] = await seated(first, 1)
    before = await seat.room.send_message("before the restart")
    presenter = presenter_of(first)
    assert await asyncio.to_thread(first.stop, signal.SIGTERM) == 0  # our loop answers the close meanwhile
    await seat.until(lambda: seat.disconnected_by_server, "disconnection")

    ports = [str(urlsplit(first.control_endpoint).port), str(urlsplit(first.messaging_endpoint).port)]
    second = launch("--port", ports[0], "--messaging-port", ports[1], "--state", state)
    assert (second.url, second.room_code, second.fingerprint) == (first.url, first.room_code, first.fingerprint)
    assert second.environment == first.environment  # the presenter's shell needs no new exports
    assert [room["name"] for room in presenter.client.list_rooms()["rooms"]] == ["Workshop"]

    # The same attendee, with the seat it got before the restart, connects as the same user.
    await seat.room.connect()
    after = await seat.room.send_message("after the restart")
    assert after.sender.user_id == before.sender.user_id == seat.attendee.user_id
    assert [i["tokensMinted"] for i in presenter.invites()] == [2]
    await leave([seat])


# -- the room's stream -------------------------------------------------------------------------------
def test_with_test_stream_attendees_are_given_a_live_stream_they_can_fetch(launch: Any) -> None:
    running = launch("--port", "0", "--test-stream")
    shared = running.value("stream")
    attendee = attend(running, "Viewer")
    assert attendee.playback_url == shared
    with urllib.request.urlopen(shared, timeout=TIMEOUT) as response:
        playlist = response.read().decode()
    assert playlist.startswith("#EXTM3U") and ".ts" in playlist
    # The panel an attendee opens plays that stream beside the chat.
    panel = attendee.live_stream_panel()
    try:
        assert panel.player.url == shared
    finally:
        panel.close()
