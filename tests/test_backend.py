"""The one switch between the embedded sandbox and AWS."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from motoutil import unique

from ivs_widgets.aws.handler_source import HandlerSourceError, lambda_module
from ivs_widgets.aws.review_lambda import zipped
from ivs_widgets.backend import AWS, SANDBOX, Backend, connect, require_sandbox
from ivs_widgets.chat import BackgroundChatRoom
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.test_card import StreamError, TestCardFeed, ffmpeg_exe, output_protocols


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
    monkeypatch.setenv("IVS_PLAYBACK_URL", "https://abc.us-west-2.playback.live-video.net/api/video/v1/x.m3u8")
    assert connect("aws").playback_url().endswith("x.m3u8")


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


# -- the AWS form: Lambda, IAM, S3 and STS on moto's server, ivschat on a sandbox ----------------------
BLOCKED = {"darn"}
LINK = re.compile(r"https?://\S+")


def word_filter(event: dict[str, Any]) -> dict[str, Any]:
    """A review function as a notebook writes one: module globals, a regex, the standard library."""
    if BLOCKED & set(re.findall(r"[a-z]+", event["Content"].lower())):
        return {"ReviewResult": "DENY"}
    return {"ReviewResult": "ALLOW", "Content": LINK.sub("[link removed]", event["Content"])}


@pytest.fixture
def aws_backend(moto_server: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """connect("aws") configured by the standard variables only: ivschat on the sandbox, the rest on moto."""
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)
    for service in ("S3", "LAMBDA", "IAM", "STS", "CLOUDWATCH_LOGS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_server)
    monkeypatch.delenv("IVS_LAMBDA_ROLE_ARN", raising=False)
    monkeypatch.delenv("IVS_LOG_BUCKET", raising=False)
    backend = connect("aws")
    yield backend
    backend.close()


def aws_client(service: str) -> Any:
    return boto3.session.Session().client(service)


def test_on_aws_a_review_function_becomes_a_lambda_that_ivschat_may_invoke_for_the_room(
        aws_backend: Backend) -> None:
    room, name = aws_backend.client.create_room(name="reviewed"), unique("word-filter")
    arn = aws_backend.review_handler(word_filter, name, room_arn=room["arn"])
    lambda_, iam = aws_client("lambda"), aws_client("iam")
    function = lambda_.get_function(FunctionName=name)["Configuration"]
    assert function["FunctionArn"] == arn and function["Runtime"].startswith("python3.")
    (statement,) = json.loads(lambda_.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "ivschat.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == room["arn"]
    role_name = function["Role"].rpartition("/")[2]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    # The uploaded package (same hash) is the function with what it uses; its entry point gives the verdicts.
    package = zipped(lambda_module(word_filter))
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    module_name, _, entry_name = function["Handler"].partition(".")
    module: dict[str, Any] = {}
    exec(zipfile.ZipFile(io.BytesIO(package)).read(f"{module_name}.py"), module)
    assert module[entry_name]({"Content": "well darn"}, None) == {"ReviewResult": "DENY"}
    assert module[entry_name]({"Content": "see https://x.example"}, None)["Content"] == "see [link removed]"

    aws_backend.close()
    with pytest.raises(lambda_.exceptions.ResourceNotFoundException):
        lambda_.get_function(FunctionName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role_name)
    assert aws_backend.client.list_rooms()["rooms"] == []


def shout(event: dict[str, Any]) -> dict[str, Any]:
    return {"ReviewResult": "ALLOW", "Content": event["Content"].upper()}


def test_on_aws_deploying_a_name_again_in_the_same_kernel_updates_the_code(aws_backend: Backend) -> None:
    """A learner runs the handler cell twice, or the first cell again (a second backend): no name conflict."""
    name, lambda_ = unique("again"), aws_client("lambda")
    aws_backend.review_handler(word_filter, name)
    first = lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    aws_backend.review_handler(shout, name)
    second = lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    with connect("aws") as rerun:
        rerun.review_handler(word_filter, name)
        assert lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == first != second
    with pytest.raises(lambda_.exceptions.ResourceNotFoundException):
        lambda_.get_function(FunctionName=name)
    aws_backend.review_handler(shout, name)  # gone: made anew
    assert lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == second


def test_on_aws_a_function_that_cannot_stand_alone_is_refused_naming_what_it_uses(aws_backend: Backend) -> None:
    client = aws_backend.client

    def uses_a_client(event: dict[str, Any]) -> dict[str, Any]:
        return {"ReviewResult": "ALLOW" if client else "DENY"}

    name = unique("closure")
    with pytest.raises(HandlerSourceError) as refused:
        aws_backend.review_handler(uses_a_client, name)
    assert refused.value.code == "Closure"
    with pytest.raises(HandlerSourceError, match="lambda expression"):
        aws_backend.review_handler(lambda event: event, name)
    assert name not in [f["FunctionName"] for f in aws_client("lambda").list_functions()["Functions"]]


def test_on_aws_without_a_playback_url_a_channel_of_your_own_plays_until_close(
        aws_backend: Backend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("IVS_PLAYBACK_URL", raising=False)
    url = aws_backend.playback_url()
    assert aws_backend.playback_url() == url  # one channel, however often it is asked
    (channel,) = aws_client("ivs").list_channels()["channels"]
    assert aws_client("ivs").get_channel(arn=channel["arn"])["channel"]["playbackUrl"] == url
    assert "streaming is billed" in capsys.readouterr().out
    aws_backend.close()
    assert aws_client("ivs").list_channels()["channels"] == []


def bucket_names() -> list[str]:
    return [bucket["Name"] for bucket in aws_client("s3").list_buckets()["Buckets"]]


def test_on_aws_a_log_bucket_is_unique_lets_log_delivery_write_and_goes_with_close(aws_backend: Backend) -> None:
    prefix = unique("chat-archive")
    bucket = aws_backend.log_bucket(prefix)
    assert bucket.startswith(f"{prefix}-") and bucket != aws_backend.log_bucket(prefix)
    s3 = aws_client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {statement["Principal"]["Service"] for statement in policy["Statement"]} == {"delivery.logs.amazonaws.com"}
    s3.put_object(Bucket=bucket, Key="AWSLogs/123456789012/IVSChatLogs/x.log.gz", Body=b"...")
    aws_backend.close()
    assert not [name for name in bucket_names() if name.startswith(prefix)]


def test_with_ivs_log_bucket_the_learners_bucket_is_used_and_kept(aws_backend: Backend,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    own = unique("my-own-archive")
    aws_client("s3").create_bucket(Bucket=own)
    monkeypatch.setenv("IVS_LOG_BUCKET", own)
    assert aws_backend.log_bucket("chat-archive") == own
    aws_backend.close()
    assert own in bucket_names()
    aws_client("s3").delete_bucket(Bucket=own)


def test_close_on_aws_deletes_rooms_and_logging_configurations_made_through_the_client(aws_backend: Backend) -> None:
    """A notebook that failed halfway never reached its clean-up cell: close() (or the kernel's exit) still
    leaves the account as it found it."""
    prefix = unique("archive")
    config = aws_backend.client.create_logging_configuration(
        destinationConfiguration={"s3": {"bucketName": aws_backend.log_bucket(prefix)}})
    aws_backend.client.create_room(name="left-behind", loggingConfigurationIdentifiers=[config["arn"]])
    doomed = aws_backend.client.create_room(name="deleted-by-the-notebook")
    aws_backend.client.delete_room(identifier=doomed["arn"])
    aws_backend.close()
    assert aws_backend.client.list_rooms()["rooms"] == []
    assert aws_backend.client.list_logging_configurations()["loggingConfigurations"] == []
    assert not [name for name in bucket_names() if name.startswith(prefix)]


def test_a_sandbox_that_delivers_to_an_s3_api_is_read_back_from_there(moto_server: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With AWS_ENDPOINT_URL_S3 set, an embedded sandbox logs to that API (MinIO, LocalStack): chat_history
    reads the bucket there, not the empty local folder."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = unique("sandbox-archive")
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    with connect("sandbox", s3_endpoint=moto_server) as backend:
        config = backend.client.create_logging_configuration(destinationConfiguration={"s3": {"bucketName": bucket}})
        room = backend.client.create_room(loggingConfigurationIdentifiers=[config["arn"]])
        chat = BackgroundChatRoom(backend.messaging_url, backend.token_provider(room["arn"], "a", ["SEND_MESSAGE"]))
        try:
            chat.connect()
            sent = chat.send_message("kept in the S3 API")
        finally:
            chat.close()
        logs = backend.chat_history(room["arn"], expect=1)
        assert [frame.id for frame in logs.frames] == [sent.id]


def test_a_workshop_notebook_on_aws_says_so_and_its_other_cells_are_skipped(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("IVS_BACKEND", raising=False)
    require_sandbox("workshop mode")
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("IVS_BACKEND", "aws")
    with pytest.raises(SystemExit) as ended:  # a script (no IPython) ends, successfully
        require_sandbox("workshop mode")
    assert ended.value.code == 0
    assert "only the local sandbox has" in capsys.readouterr().out


# -- going live with the built-in source -----------------------------------------------------------
def test_the_ingest_server_is_rtmps_on_443_for_an_aws_host_and_plain_rtmp_for_an_endpoint_with_a_port() -> None:
    aws = {"ingestEndpoint": "a1b2c3d4e5f6.global-contribute.live-video.net"}
    assert Backend.ingest_server(aws) == "rtmps://a1b2c3d4e5f6.global-contribute.live-video.net:443/app/"
    assert Backend.ingest_server({"ingestEndpoint": "127.0.0.1:1935"}) == "rtmp://127.0.0.1:1935/app/"
    assert Backend.ingest_server({"ingestEndpoint": "[::1]:1935"}) == "rtmp://[::1]:1935/app/"


def test_the_kits_ffmpeg_can_push_rtmps_and_a_protocol_it_lacks_is_a_clear_error() -> None:
    assert {"rtmp", "rtmps"} <= output_protocols(ffmpeg_exe())
    with pytest.raises(StreamError, match="cannot stream over nope://"):
        TestCardFeed("nope://example.com/app/key").start()


def test_go_live_on_the_sandbox_streams_the_test_card_until_close(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVS_BACKEND", raising=False)
    with connect() as backend:
        created = backend.ivs.create_channel(name="one-line")
        with pytest.raises(StreamError, match="not the stream key"):
            backend.go_live(created["channel"], "sk_us-east-1_wrongwrongwr_ongwrongwron")
        feed = backend.go_live(created["channel"], created["streamKey"]["value"])
        assert backend.ivs.get_stream(channelArn=created["channel"]["arn"])["stream"]["state"] == "LIVE"
        assert feed.running and feed.rtmp_url.startswith(backend.ingest_server(created["channel"]))
    assert not feed.running  # close() stopped it


def test_on_aws_go_live_pushes_to_the_channels_ingest_and_close_ends_it_and_deletes_the_channel(
        aws_backend: Backend) -> None:
    """The sandbox stands in for AWS: its ingestEndpoint carries a port, so the feed is plain RTMP there."""
    ivs = aws_client("ivs")
    channel = aws_backend.ivs.create_channel(name="aws-form")["channel"]
    with pytest.raises(StreamError, match="ffmpeg stopped before"):  # a wrong key: the ingest refuses it at once
        aws_backend.go_live(channel["arn"], "sk_us-east-1_wrongwrongwr_ongwrongwron")
    feed = aws_backend.go_live(channel["arn"])
    assert ivs.get_stream(channelArn=channel["arn"])["stream"]["state"] == "LIVE"
    assert feed.rtmp_url.startswith(f"rtmp://{channel['ingestEndpoint']}/app/sk_")
    aws_backend.close()  # the stream is still live: close() ends it, then deletes the channel
    assert not feed.running
    assert ivs.list_channels()["channels"] == []
