"""The one switch between the embedded sandbox and AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivs_widgets.backend import AWS, SANDBOX, connect
from ivs_widgets.chat import BackgroundChatRoom


def test_default_is_a_running_sandbox_whose_tokens_open_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVS_BACKEND", raising=False)
    with connect() as backend:
        assert backend.kind == SANDBOX
        assert backend.messaging_url.startswith("ws://127.0.0.1:")
        assert "local sandbox" in repr(backend)
        room = backend.client.create_room(name="switch")
        provider = backend.token_provider(room["arn"], "alice", ["SEND_MESSAGE"], {"displayName": "Alice"},
                                          session_duration_minutes=5)
        chat = BackgroundChatRoom(backend.messaging_url, provider)
        try:
            chat.connect()
            echo = chat.send_message("hello")
        finally:
            chat.close()
        assert (echo.content, echo.sender.user_id, echo.sender.attributes) == ("hello", "alice",
                                                                                {"displayName": "Alice"})
    assert "stopped" in repr(backend.sandbox)  # leaving the block stopped the embedded sandbox


def test_aws_backend_uses_the_standard_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVS_BACKEND", "aws")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    backend = connect()
    assert backend.kind == AWS and backend.sandbox is None
    assert backend.region == "eu-west-1"
    assert backend.messaging_url == "wss://edge.ivschat.eu-west-1.amazonaws.com"
    assert backend.client.meta.endpoint_url == "https://ivschat.eu-west-1.amazonaws.com"
    backend.close()  # nothing to stop on AWS


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown backend 'local'"):
        connect("local")


def test_playback_url_is_the_sandbox_test_stream_or_the_aws_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with connect("sandbox") as backend:
        url = backend.playback_url()
        assert url.startswith("http://127.0.0.1:") and url.endswith(".m3u8")
        assert backend.playback_url("https://example.com/live.m3u8") == "https://example.com/live.m3u8"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    aws = connect("aws")
    monkeypatch.delenv("IVS_PLAYBACK_URL", raising=False)
    with pytest.raises(ValueError, match="IVS_PLAYBACK_URL"):
        aws.playback_url()
    monkeypatch.setenv("IVS_PLAYBACK_URL", "https://abc.us-west-2.playback.live-video.net/api/video/v1/x.m3u8")
    assert aws.playback_url().endswith("x.m3u8")


def test_live_stream_panel_puts_the_test_stream_beside_the_rooms_chat() -> None:
    with connect("sandbox") as backend:
        room = backend.client.create_room(name="live", maximumMessageLength=120)
        live = backend.live_stream_panel(room["arn"], "viewer", display_name="Viewer")
        try:
            assert live.player.url.endswith(".m3u8")
            assert (live.chat.max_length, live.chat.title, live.chat.can_send) == (120, "live", True)
            assert not live.chat.can_delete
            assert live.chat.send("hi").sender.attributes == {"displayName": "Viewer"}
        finally:
            live.close()


def test_review_handler_registers_a_python_function_as_the_rooms_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    with connect("sandbox") as backend:
        uri = backend.review_handler(lambda event: {"ReviewResult": "ALLOW", "Content": event["Content"].upper()},
                                     "shout")
        assert uri == "arn:aws:lambda:us-east-1:123456789012:function:shout"
        room = backend.client.create_room(messageReviewHandler={"uri": uri})
        chat = BackgroundChatRoom(backend.messaging_url, backend.token_provider(room["arn"], "a", ["SEND_MESSAGE"]))
        try:
            chat.connect()
            assert chat.send_message("quiet").content == "QUIET"
        finally:
            chat.close()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with pytest.raises(RuntimeError, match="deploy 'shout'"):
        connect("aws").review_handler(lambda event: event, "shout")


def test_the_sandbox_backend_points_the_kernels_subprocesses_at_itself_until_closed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``!aws ivschat create-room`` in a notebook reaches the notebook's own sandbox."""
    monkeypatch.delenv("IVS_BACKEND", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # a developer's ~/.aws must not leak in
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a-key-the-user-had")
    monkeypatch.delenv("AWS_ENDPOINT_URL_IVSCHAT", raising=False)
    with connect() as backend:
        assert os.environ["AWS_ENDPOINT_URL_IVSCHAT"] == backend.client.meta.endpoint_url
        made = subprocess.run([sys.executable, "-m", "awscli", "ivschat", "create-room", "--name", "from-the-cli"],
                              capture_output=True, text=True, timeout=60, check=True)
        arn = json.loads(made.stdout)["arn"]
        assert backend.client.get_room(identifier=arn)["name"] == "from-the-cli"
    assert "AWS_ENDPOINT_URL_IVSCHAT" not in os.environ
    assert os.environ["AWS_ACCESS_KEY_ID"] == "a-key-the-user-had"


def test_the_aws_backend_exports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_IVSCHAT", raising=False)
    backend = connect("aws")
    backend.export_environment()
    assert "AWS_ENDPOINT_URL_IVSCHAT" not in os.environ


def test_closed_tells_a_clean_up_cell_it_already_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVS_BACKEND", raising=False)
    backend = connect()
    assert not backend.closed
    backend.close()
    assert backend.closed
    backend.close()  # twice is harmless


def test_the_kernels_own_scripts_come_first_on_path_until_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``!aws`` finds the AWS CLI installed with the tutorial though Jupyter ran without an activated venv."""
    import sysconfig

    monkeypatch.delenv("IVS_BACKEND", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with connect():
        assert os.environ["PATH"].split(os.pathsep) == [sysconfig.get_path("scripts"), "/usr/bin", "/bin"]
    assert os.environ["PATH"] == "/usr/bin:/bin"
