"""The sandbox process crashes or stops mid-chat and comes back with its ``--state`` file.

A real ``ivs-sandbox`` process is restarted at the same ports. In the room are a
BackgroundChatRoom and a ChatPanel whose token providers call CreateChatToken through boto3, as a
notebook's backend does. SIGKILL is a crash, with no close frames: the clients reconnect by
themselves. SIGTERM is an orderly shutdown: every connection gets close 1001 (going away), which the
client treats as a final ``serverDisconnect``, as the JS SDK does with any clean close. The viewer
then reconnects by hand.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from sandbox_process import IVS_SANDBOX, Running
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.frames import CloseCode
from websockets.sync.client import connect

from ivs_widgets.chat import (
    NOT_CONNECTED_CODE,
    BackgroundChatRoom,
    ChatError,
    ChatToken,
    ConnectionState,
    DisconnectReason,
)
from ivs_widgets.widgets import ChatPanel

#: Longest wait for something that should happen; generous so a loaded machine stays green.
TIMEOUT = 10.0
ALL = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")
#: The default budget (3 retries, 0.9 to 1.75 s of backoff in all) is no longer than a process
#: restart (0.5 s idle, up to 3 s on a busy machine): it fails now and then. Ten retries wait 16 s or more.
RESTART_RECONNECT_ATTEMPTS = 10


class SandboxProcess:
    """``ivs-sandbox --state FILE`` in a subprocess, started again at the ports it first chose."""

    def __init__(self, state: Path, workdir: Path) -> None:
        self.state = state
        self.workdir = workdir
        self.ports = (0, 0)
        self.running: Running | None = None
        self.environment: dict[str, str] = {}
        self.messaging_url = ""
        self.start()

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self.running.process if self.running is not None else None

    def start(self) -> None:
        """Start and wait for the ready line; the first start fixes the ports every restart reuses."""
        control, messaging = self.ports
        command = [IVS_SANDBOX, "--port", str(control), "--messaging-port", str(messaging), "--state", str(self.state)]
        # TMPDIR: a killed sandbox cannot remove its temporary chat log folder, so keep it in the test's.
        self.running = Running(command, env={**os.environ, "TMPDIR": str(self.workdir)},
                               stderr_path=self.workdir / "stderr.log")
        self.environment = self.running.environment
        self.messaging_url = self.running.messaging_endpoint
        self.ports = (urlsplit(self.running.control_endpoint).port or 0, urlsplit(self.messaging_url).port or 0)

    def kill(self) -> None:
        """SIGKILL: the kernel drops every connection, and no close frame is sent."""
        assert self.running is not None
        self.running.kill()

    def terminate(self) -> int:
        """SIGTERM: the sandbox closes every connection properly and exits; returns the exit status."""
        assert self.running is not None
        return self.running.stop(signal.SIGTERM)


class Minter:
    """A backend's token provider: CreateChatToken through boto3 for each connection, every token kept."""

    def __init__(self, ivschat: Any, room_arn: str, user_id: str) -> None:
        self.ivschat, self.room_arn, self.user_id = ivschat, room_arn, user_id
        self.issued: list[str] = []

    def __call__(self) -> ChatToken:
        response = self.ivschat.create_chat_token(roomIdentifier=self.room_arn, userId=self.user_id,
                                                  capabilities=list(ALL))
        self.issued.append(response["token"])
        return ChatToken.from_response(response)


class Inbox:
    """Ids of the messages one application was handed, in order; callbacks come from a chat thread."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, message: Any) -> None:
        with self._changed:
            self.ids.append(message.id)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.ids) >= count, TIMEOUT), f"only {self.ids} arrived"
            return list(self.ids)


class States:
    """The (state, reason) pairs a room reports, taken one by one with a timeout."""

    def __init__(self, chat: BackgroundChatRoom) -> None:
        self.seen: queue.Queue[tuple[ConnectionState, DisconnectReason | None]] = queue.Queue()
        chat.on("state", lambda state, reason: self.seen.put((state, reason)))

    def next(self) -> tuple[ConnectionState, DisconnectReason | None]:
        return self.seen.get(timeout=TIMEOUT)


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    running = SandboxProcess(tmp_path / "state.sqlite", tmp_path)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.kill()


@pytest.fixture
def ivschat(sandbox_process: SandboxProcess) -> Any:
    """boto3 configured only by the printed exports, without retries: the room's own budget decides."""
    env = sandbox_process.environment
    return boto3.session.Session().client(
        "ivschat", endpoint_url=env["AWS_ENDPOINT_URL_IVSCHAT"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def join(sandbox_process: SandboxProcess, ivschat: Any) -> Iterator[Callable[..., Any]]:
    """``join(kind, room_arn, user_id, **options)``: a connected BackgroundChatRoom or ChatPanel, and its Minter."""
    opened: list[Any] = []

    def make(kind: type, room_arn: str, user_id: str, **options: Any) -> tuple[Any, Minter]:
        minter = Minter(ivschat, room_arn, user_id)
        if kind is ChatPanel:
            client = ChatPanel(sandbox_process.messaging_url, minter, capabilities=ALL, timeout=TIMEOUT, **options)
            opened.append(client)
            client.wait_for(lambda: client.status == "connected", TIMEOUT)  # the view shows it too
        else:
            client = BackgroundChatRoom(sandbox_process.messaging_url, minter, timeout=TIMEOUT, **options)
            opened.append(client)
            client.connect()
        return client, minter

    yield make
    for client in opened:
        client.close()


class Transitions:
    """What the panel's view is shown, change by change (``connection_state`` and ``status``)."""

    def __init__(self, panel: ChatPanel) -> None:
        self.seen: list[tuple[str, str]] = []
        panel.observe(lambda change: self.seen.append((change.name, change.new)), names=["connection_state", "status"])

    def of(self, name: str) -> list[str]:
        return [value for trait, value in self.seen if trait == name]


def test_a_crashed_sandbox_comes_back_and_the_chat_resumes_without_duplicates(
        sandbox_process: SandboxProcess, ivschat: Any, join: Callable[..., Any]) -> None:
    arn = ivschat.create_room(name="survives")["arn"]
    alice, alice_tokens = join(BackgroundChatRoom, arn, "alice", max_reconnect_attempts=RESTART_RECONNECT_ATTEMPTS)
    panel, panel_tokens = join(ChatPanel, arn, "viewer", max_reconnect_attempts=RESTART_RECONNECT_ATTEMPTS)
    alice_inbox, panel_inbox = Inbox(), Inbox()
    alice.on("message", alice_inbox)
    panel.on_message(panel_inbox)
    states, shown = States(alice), Transitions(panel)

    sent = [alice.send_message("before the crash").id, panel.send("me too").id]
    panel_inbox.wait_for(2)
    alice_inbox.wait_for(2)
    tokens_before = [list(alice_tokens.issued), list(panel_tokens.issued)]

    sandbox_process.kill()
    assert states.next() == (ConnectionState.CONNECTING, None)
    panel.wait_for(lambda: (panel.connection_state, panel.status) == ("connecting", "connecting…"), TIMEOUT)
    with pytest.raises(ChatError) as refused:  # meanwhile, sending fails at once, in words
        panel.send("into the void")
    assert refused.value.code == NOT_CONNECTED_CODE
    panel.wait_for(lambda: panel.error == "Message not sent: not connected", TIMEOUT)

    sandbox_process.start()
    assert states.next() == (ConnectionState.CONNECTED, None)
    panel.wait_for(lambda: (panel.connection_state, panel.status) == ("connected", "connected"), TIMEOUT)
    # The view went connecting -> connected; it never said "disconnected".
    assert (shown.of("connection_state"), shown.of("status")) == (["connecting", "connected"],
                                                                  ["connecting…", "connected"])

    # The state survived: the room is there, and each client opened its connection with a fresh
    # token. The pre-crash tokens stay spent after the SIGKILL.
    assert ivschat.get_room(identifier=arn)["name"] == "survives"
    for minter, before in zip((alice_tokens, panel_tokens), tokens_before):
        issued = minter.issued
        assert len(set(issued)) == len(issued) and issued[-1] not in before
        with pytest.raises(InvalidStatus) as replayed, connect(sandbox_process.messaging_url,
                                                               subprotocols=[before[0]], open_timeout=TIMEOUT):
            pass
        assert replayed.value.response.status_code == 401

    sent += [panel.send("back again").id, alice.send_message("after the restart").id]
    panel.wait_for(lambda: panel.error == "", TIMEOUT)  # a sent message clears the error
    # Each message reached each application once, in order.
    assert alice_inbox.wait_for(4) == sent and panel_inbox.wait_for(4) == sent
    assert [message.id for message in panel.messages] == sent
    assert collections.Counter(alice_inbox.ids + panel_inbox.ids) == {message_id: 2 for message_id in sent}
    assert states.seen.empty() and alice.state is ConnectionState.CONNECTED


def test_an_outage_longer_than_the_default_budget_ends_disconnected_until_the_viewer_reconnects(
        sandbox_process: SandboxProcess, ivschat: Any, join: Callable[..., Any]) -> None:
    arn = ivschat.create_room()["arn"]
    panel, tokens = join(ChatPanel, arn, "viewer")  # the default reconnect budget
    before = panel.send("before").id

    sandbox_process.kill()
    # The control plane is down too: every attempt fails at the token provider.
    panel.wait_for(lambda: panel.status == "disconnected: could not get a chat token", TIMEOUT)
    assert panel.connection_state == "disconnected"

    sandbox_process.start()
    panel.connect()  # what the view's reconnect button does
    after = panel.send("after").id
    panel.wait_for(lambda: [m.id for m in panel.messages] == [before, after] and panel.status == "connected",
                   TIMEOUT)
    assert len(set(tokens.issued)) == len(tokens.issued) == 2


def test_a_stopped_sandbox_closes_with_going_away_which_is_final_like_the_js_sdk(
        sandbox_process: SandboxProcess, ivschat: Any, join: Callable[..., Any]) -> None:
    arn = ivschat.create_room()["arn"]
    alice, alice_tokens = join(BackgroundChatRoom, arn, "alice")
    panel, panel_tokens = join(ChatPanel, arn, "viewer")
    states = States(alice)
    token = ivschat.create_chat_token(roomIdentifier=arn, userId="watcher")["token"]
    with connect(sandbox_process.messaging_url, subprotocols=[token], open_timeout=TIMEOUT) as watcher:
        assert sandbox_process.terminate() == 0
        with pytest.raises(ConnectionClosedOK):
            watcher.recv(timeout=TIMEOUT)
    assert watcher.close_code == CloseCode.GOING_AWAY
    # A clean close is final: no reconnect, and no new token.
    assert states.next() == (ConnectionState.DISCONNECTED, DisconnectReason.SERVER)
    panel.wait_for(lambda: (panel.connection_state, panel.status) == ("disconnected", "disconnected by the server"),
                   TIMEOUT)
    assert len(alice_tokens.issued) == len(panel_tokens.issued) == 1

    sandbox_process.start()
    alice.connect()
    panel.connect()
    inbox = Inbox()
    panel.on_message(inbox)
    sent = alice.send_message("we are back").id
    assert inbox.wait_for(1) == [sent]
    assert [len(set(minter.issued)) for minter in (alice_tokens, panel_tokens)] == [2, 2]
