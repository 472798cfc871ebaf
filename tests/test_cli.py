"""``ivs-sandbox`` as a user runs it: a real process, its printed lines, boto3 configured only by them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sandbox_process import IVS_SANDBOX as SCRIPT
from sandbox_process import START_TIMEOUT, Running
from websockets.sync.client import connect

from ivs_widgets.backend import AWS
from ivs_widgets.backend import connect as connect_backend
from ivs_widgets.chat import BackgroundChatRoom
from ivs_widgets.protocol import frames
from ivs_widgets.protocol.facts import MESSAGING_URL_VARIABLE

#: The console script pip installed next to this interpreter (what a user types).
IVS_SANDBOX = [SCRIPT]
MODULE = [sys.executable, "-m", "ivs_widgets.sandbox"]


@pytest.fixture
def start() -> Iterator[Any]:
    started: list[Running] = []

    def run(*args: str, command: list[str] = IVS_SANDBOX) -> Running:
        started.append(Running([*command, *args]))
        return started[-1]

    yield run
    for process in started:
        process.kill()


@pytest.fixture
def shell_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Apply printed ``export`` lines as a fresh shell would: no other AWS setting may leak in."""

    def apply(environment: dict[str, str]) -> Any:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return boto3.session.Session().client("ivschat")

    return apply


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_printed_exports_are_all_boto3_needs(start: Any, shell_env: Any, signum: int) -> None:
    sandbox = start("--port", "0")
    control = next(line.split()[-1] for line in sandbox.printed if line.startswith("control plane"))
    messaging = next(line.split()[-1] for line in sandbox.printed if line.startswith("messaging"))
    assert control.startswith("http://127.0.0.1:") and not control.endswith(":0")
    assert messaging.startswith("ws://127.0.0.1:") and not messaging.endswith(":0")
    assert sandbox.environment["AWS_ENDPOINT_URL_IVSCHAT"] == sandbox.environment["AWS_ENDPOINT_URL_IVS"] == control

    ivschat = shell_env(sandbox.environment)
    room = ivschat.create_room(name="from-another-shell")
    assert room["arn"].startswith(f"arn:aws:ivschat:{sandbox.environment['AWS_DEFAULT_REGION']}:")
    assert [r["arn"] for r in ivschat.list_rooms()["rooms"]] == [room["arn"]]
    channel = boto3.session.Session().client("ivs").create_channel(name="from-another-shell")["channel"]
    assert channel["arn"].startswith(f"arn:aws:ivs:{sandbox.environment['AWS_DEFAULT_REGION']}:")

    token = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="viewer",
                                      capabilities=["SEND_MESSAGE"])["token"]
    with connect(messaging, subprotocols=[token], open_timeout=10) as chat:
        chat.send(frames.dumps(frames.SendMessageRequest(content="hello", request_id="r1")))
        echoed = frames.loads(chat.recv(timeout=10))
    assert isinstance(echoed, frames.ChatMessage)
    assert (echoed.content, echoed.sender.user_id, echoed.request_id) == ("hello", "viewer", "r1")

    assert sandbox.stop(signum) == 0
    assert "Traceback" not in sandbox.stderr()


@pytest.mark.parametrize("mode", [[], ["--workshop"]], ids=["plain", "workshop-tls"])
def test_printed_exports_take_the_kits_aws_path_to_the_sandbox(start: Any, shell_env: Any, mode: list[str]) -> None:
    """``connect("aws")`` configured only by the exports: the code that runs on AWS, pointed elsewhere."""
    sandbox = start("--port", "0", *mode)
    assert sandbox.environment[MESSAGING_URL_VARIABLE] == sandbox.messaging_endpoint
    shell_env(sandbox.environment)
    with connect_backend("aws") as backend:
        assert (backend.kind, backend.sandbox, backend.messaging_url) == (AWS, None, sandbox.messaging_endpoint)
        room = backend.client.create_room(name="through-the-aws-path")
        chat = BackgroundChatRoom(backend.messaging_url, backend.token_provider(room["arn"], "viewer", ["SEND_MESSAGE"]),
                                  ssl=backend.ssl)
        try:
            chat.connect()
            echo = chat.send_message("hello")
        finally:
            chat.close()
    assert (echo.content, echo.sender.user_id) == ("hello", "viewer")
    assert sandbox.stop() == 0


def test_region_and_account_options_shape_the_arns(start: Any, shell_env: Any) -> None:
    sandbox = start("--port", "0", "--region", "eu-west-1", "--account-id", "210987654321", command=MODULE)
    assert sandbox.environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    room = shell_env(sandbox.environment).create_room()
    assert room["arn"].startswith("arn:aws:ivschat:eu-west-1:210987654321:room/")


def test_state_file_keeps_rooms_across_a_restart(start: Any, shell_env: Any, tmp_path: Path) -> None:
    state = tmp_path / "sandbox.sqlite"
    first = start("--port", "0", "--state", str(state))
    room = shell_env(first.environment).create_room(name="kept", tags={"topic": "restart"})
    assert first.stop() == 0

    second = start("--port", "0", "--state", str(state), command=MODULE)
    ivschat = shell_env(second.environment)
    kept = ivschat.get_room(identifier=room["arn"])
    assert (kept["name"], kept["tags"]) == ("kept", {"topic": "restart"})
    assert [r["arn"] for r in ivschat.list_rooms()["rooms"]] == [room["arn"]]
    assert second.stop() == 0


def test_a_taken_port_is_a_clear_error_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*IVS_SANDBOX, "--port", str(port)], capture_output=True, text=True,
                                timeout=START_TIMEOUT)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_go_live_feeds_a_channel_over_the_printed_rtmp_ingest(start: Any, shell_env: Any) -> None:
    sandbox = start("--port", "0", "--go-live")
    assert re.fullmatch(r"rtmp://127\.0\.0\.1:\d+/app/  \(server; the stream key follows it\)",
                        sandbox.value("RTMP ingest"))
    channel_arn = sandbox.value("test card channel")
    live = sandbox.next_line(timeout=60)
    assert live.startswith("test card live: http://127.0.0.1:") and live.endswith("/live.m3u8")
    shell_env(sandbox.environment)
    ivs = boto3.session.Session().client("ivs")
    channel = ivs.get_channel(arn=channel_arn)["channel"]
    assert sandbox.value("RTMP ingest").startswith(f"rtmp://{channel['ingestEndpoint']}/app/")
    assert ivs.get_stream(channelArn=channel_arn)["stream"]["playbackUrl"] == live.removeprefix("test card live: ")
    with urllib.request.urlopen(channel["playbackUrl"], timeout=10) as playlist:
        assert b"#EXTINF" in playlist.read()
    assert sandbox.stop() == 0
    assert "Traceback" not in sandbox.stderr()  # the live stream ends quietly with the sandbox
