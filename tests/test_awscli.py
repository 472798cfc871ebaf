"""The seed blog's AWS CLI steps, typed as the blog has them, against the sandbox.

Only the environment differs from a real account: the variables ``Sandbox.environment()`` gives
(what ``ivs-sandbox`` prints as ``export`` lines). The CLI is AWS CLI v1 from PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ivs_widgets.sandbox import Sandbox

Aws = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def aws(sandbox: Sandbox, tmp_path: Path) -> Aws:
    """Run ``aws ARGS...`` in an environment holding only the sandbox's AWS settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(sandbox.environment(),
               AWS_CONFIG_FILE=str(tmp_path / "no-config"),  # a developer's ~/.aws must not leak in
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "awscli", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    return run


def output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON the command printed ("" for commands that print nothing); it must have succeeded."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else ""


def test_blog_steps_create_a_room_and_a_chat_token(aws: Aws, sandbox: Sandbox) -> None:
    room = output(aws("ivschat", "create-room", "--name", "demo-room"))
    assert room["name"] == "demo-room"
    assert room["arn"] == f"arn:aws:ivschat:{sandbox.region}:{sandbox.config.account_id}:room/{room['id']}"
    assert (room["maximumMessageLength"], room["maximumMessageRatePerSecond"]) == (500, 10)
    assert room["createTime"] == room["updateTime"]

    token = output(aws("ivschat", "create-chat-token", "--room-identifier", room["arn"], "--user-id", "demo-user",
                       "--capabilities", "SEND_MESSAGE"))
    assert set(token) == {"token", "tokenExpirationTime", "sessionExpirationTime"}
    assert token["token"] and token["tokenExpirationTime"] > room["createTime"]

    assert output(aws("ivschat", "get-room", "--identifier", room["arn"])) == room
    assert [r["arn"] for r in output(aws("ivschat", "list-rooms"))["rooms"]] == [room["arn"]]
    assert output(aws("ivschat", "delete-room", "--identifier", room["arn"])) == ""
    assert output(aws("ivschat", "list-rooms")) == {"rooms": []}


def test_explicit_endpoint_url_reaches_the_same_sandbox(aws: Aws, sandbox: Sandbox) -> None:
    """Readers who add ``--endpoint-url`` to the blog's commands instead of the variable get the same."""
    room = output(aws("ivschat", "create-room", "--name", "demo-room", "--endpoint-url", sandbox.control_endpoint))
    assert sandbox.client().get_room(identifier=room["arn"])["name"] == "demo-room"


def test_a_missing_room_is_reported_as_the_service_error(aws: Aws, sandbox: Sandbox) -> None:
    missing = f"arn:aws:ivschat:{sandbox.region}:{sandbox.config.account_id}:room/AbCdEfGhIjKl"
    result = aws("ivschat", "get-room", "--identifier", missing)
    assert result.returncode != 0 and not result.stdout
    assert "(ResourceNotFoundException) when calling the GetRoom operation" in result.stderr


def test_aws_ivs_create_channel_and_get_stream(aws: Aws, sandbox: Sandbox) -> None:
    """The same exports reach the ``ivs`` API: a channel, its stream offline, then live."""
    created = output(aws("ivs", "create-channel", "--name", "demo-channel"))
    channel = created["channel"]
    assert channel["arn"].startswith(f"arn:aws:ivs:{sandbox.region}:{sandbox.config.account_id}:channel/")
    assert (channel["name"], channel["latencyMode"], channel["type"]) == ("demo-channel", "LOW", "STANDARD")
    assert created["streamKey"]["value"].startswith(f"sk_{sandbox.region}_")

    offline = aws("ivs", "get-stream", "--channel-arn", channel["arn"])
    assert offline.returncode != 0 and not offline.stdout
    assert "(ChannelNotBroadcasting) when calling the GetStream operation" in offline.stderr

    stream = sandbox.streams.stream_started(created["streamKey"]["value"])
    live = output(aws("ivs", "get-stream", "--channel-arn", channel["arn"]))["stream"]
    assert (live["streamId"], live["state"], live["health"]) == (stream.stream_id, "LIVE", "HEALTHY")
    assert live["playbackUrl"] == channel["playbackUrl"]
