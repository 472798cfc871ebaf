"""Chat logs delivered to AWS-shaped APIs (moto's S3 and CloudWatch Logs servers), destinations
checked as AWS checks them, failures that spare chat, and the documented delivery delays on request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import motoutil
import pytest
from botocore.exceptions import ClientError
from sandbox_process import IVS_SANDBOX, Running, shell_environment
from websockets.sync.client import connect
from wsutil import TIMEOUT, join, next_frame, say

from ivs_widgets.chat import history
from ivs_widgets.cli import parse_args
from ivs_widgets.protocol import frames
from ivs_widgets.sandbox import Sandbox

#: How long a test waits for a record a delay should have delivered (generous: a loaded machine).
DELIVERY_TIMEOUT = 60.0


def test_a_sandbox_without_endpoints_never_loads_boto3() -> None:
    code = ("import sys\nfrom ivs_widgets.sandbox import Sandbox\n"
            "with Sandbox() as sb:\n"
            "    config = sb.control.CreateLoggingConfiguration({'destinationConfiguration': {'s3': {'bucketName': 'b'}}})\n"
            "    sb.control.CreateRoom({'loggingConfigurationIdentifiers': [config['arn']]})\n"
            "    sb.chat_logs.flush()\n"
            "print('boto3' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout == "False\n", result.stderr


def test_endpoints_come_from_the_standard_variables_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.example:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://logs.example:4566")
    assert Sandbox().log_apis.endpoints == {"s3": "http://s3.example:9000", "cloudWatchLogs": "http://logs.example:4566"}
    assert Sandbox(s3_endpoint=None, logs_endpoint=None).log_apis.endpoints == {}


# -- the destination must exist ----------------------------------------------------------------
def refused(call: Callable[..., Any], **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return {"code": caught.value.response["Error"]["Code"], "message": caught.value.response["Error"]["Message"],
            "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def test_create_and_update_refuse_a_bucket_or_log_group_that_does_not_exist(
        moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s3, logs = motoutil.client(moto_server, "s3"), motoutil.client(moto_server, "logs")
    bucket, group = motoutil.unique("archive"), "/ivs/" + motoutil.unique("chat")
    s3.create_bucket(Bucket=bucket)
    logs.create_log_group(logGroupName=group + "-longer")  # shares the prefix: not the group asked for
    with motoutil.delivering_sandbox(moto_server, monkeypatch) as sandbox:
        ivschat = sandbox.client()
        create = ivschat.create_logging_configuration
        missing_bucket = refused(create, destinationConfiguration={"s3": {"bucketName": bucket + "-gone"}})
        assert missing_bucket["code"] == "ResourceNotFoundException" and missing_bucket["status"] == 404
        assert bucket + "-gone" in missing_bucket["message"]
        missing_group = refused(create, destinationConfiguration={"cloudWatchLogs": {"logGroupName": group}})
        assert (missing_group["code"], missing_group["status"]) == ("ResourceNotFoundException", 404)
        assert ivschat.list_logging_configurations()["loggingConfigurations"] == []

        logs.create_log_group(logGroupName=group)
        to_s3 = create(destinationConfiguration={"s3": {"bucketName": bucket}})
        assert to_s3["state"] == "ACTIVE"
        assert create(destinationConfiguration={"cloudWatchLogs": {"logGroupName": group}})["state"] == "ACTIVE"
        # Firehose has no API here: nothing to check, as with the local folders.
        assert create(destinationConfiguration={"firehose": {"deliveryStreamName": "any"}})["state"] == "ACTIVE"

        moved = refused(ivschat.update_logging_configuration, identifier=to_s3["arn"],
                        destinationConfiguration={"s3": {"bucketName": bucket + "-gone"}})
        assert moved["code"] == "ResourceNotFoundException"
        kept = ivschat.get_logging_configuration(identifier=to_s3["arn"])["destinationConfiguration"]
        assert kept == {"s3": {"bucketName": bucket}}


def test_an_api_that_cannot_be_reached_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with motoutil.delivering_sandbox(closed, monkeypatch) as sandbox:
        answer = refused(sandbox.client().create_logging_configuration,
                         destinationConfiguration={"s3": {"bucketName": "chat-archive"}})
    assert (answer["code"], answer["status"]) == ("AccessDeniedException", 403)
    assert closed in answer["message"] and "chat-archive" in answer["message"]


def test_without_endpoints_local_folders_need_no_check(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration={"s3": {"bucketName": "never-made"}})
    assert config["state"] == "ACTIVE"


# -- delivery that fails -----------------------------------------------------------------------
async def test_a_destination_api_that_fails_spares_chat_and_recovers(
        moto_server: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    s3, logs = motoutil.client(moto_server, "s3"), motoutil.client(moto_server, "logs")
    bucket, group = motoutil.unique("archive"), "/ivs/" + motoutil.unique("chat")
    s3.create_bucket(Bucket=bucket)
    logs.create_log_group(logGroupName=group)
    caplog.set_level(logging.WARNING, logger="ivs_widgets.sandbox.chat_logs")
    with motoutil.delivering_sandbox(moto_server, monkeypatch) as sandbox:
        ivschat = sandbox.client()
        configs = [ivschat.create_logging_configuration(destinationConfiguration=d)["arn"] for d in
                   ({"s3": {"bucketName": bucket}}, {"cloudWatchLogs": {"logGroupName": group}})]
        room = ivschat.create_room(loggingConfigurationIdentifiers=configs)["arn"]
        s3.delete_bucket(Bucket=bucket)  # gone after the check: delivery fails
        async with await join(sandbox, room, "alice") as alice:
            for batch in ("early", "later"):
                await say(alice, batch)
                assert (await next_frame(alice))["Content"] == batch  # chat went on
                await asyncio.to_thread(sandbox.chat_logs.flush)
            reports = [r.getMessage() for r in caplog.records
                       if r.name == "ivs_widgets.sandbox.chat_logs" and bucket in r.getMessage()]
            assert len(reports) == 1 and "NoSuchBucket" in reports[0], reports
            s3.create_bucket(Bucket=bucket)
            await say(alice, "recovered")
            await next_frame(alice)
            await asyncio.to_thread(sandbox.chat_logs.flush)
    assert [m.content for m in history.read_s3(bucket, room, client=s3).messages] == ["recovered"]
    assert [m.content for m in history.read_cloudwatch(group, room, client=logs).messages] == [
        "early", "later", "recovered"]
    assert any("works again" in r.getMessage() and bucket in r.getMessage() for r in caplog.records)


# -- the documented delays ---------------------------------------------------------------------
async def wait_for(found: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT) -> float:
    """Await a record that has no event of its own (it lands in a folder); when it came (monotonic)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(found):
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.05)
    return time.monotonic()


async def test_realistic_delivery_keeps_the_documented_delays_scaled(tmp_path: Path) -> None:
    scale = 0.02  # S3 after 6 s, CloudWatch Logs and Firehose after 0.2 s
    with Sandbox(data_dir=tmp_path, log_delivery_scale=scale, s3_endpoint=None, logs_endpoint=None) as sandbox:
        ivschat = sandbox.client()
        destinations = {"s3": {"s3": {"bucketName": "archive"}},
                        "cloudWatchLogs": {"cloudWatchLogs": {"logGroupName": "/ivs/chat"}}}
        configs = [ivschat.create_logging_configuration(destinationConfiguration=d)["arn"]
                   for d in destinations.values()]
        room = ivschat.create_room(loggingConfigurationIdentifiers=configs)["arn"]

        def stored(kind: str) -> list[str]:
            return [f.id for f in history.read_sandbox(tmp_path, destinations[kind], room).frames]

        async with await join(sandbox, room, "alice") as alice:
            sent = time.monotonic()
            await say(alice, "hello")
            message = await next_frame(alice, TIMEOUT)
            in_cloudwatch = await wait_for(lambda: stored("cloudWatchLogs") == [message["Id"]])
            assert stored("s3") == []  # S3 keeps it for minutes on AWS: 6 s here
            in_s3 = await wait_for(lambda: stored("s3") == [message["Id"]])
            assert in_s3 - sent >= 300 * scale and in_s3 > in_cloudwatch
            await say(alice, "flushed")
            flushed = await next_frame(alice, TIMEOUT)
            await asyncio.to_thread(sandbox.chat_logs.flush)  # flush() delivers at once, whatever the delay
            assert stored("s3") == [message["Id"], flushed["Id"]]


@pytest.mark.parametrize(("argv", "scale"), [([], None), (["--realistic-log-delivery"], 1.0),
                                             (["--realistic-log-delivery", "0.01"], 0.01)])
def test_realistic_log_delivery_flag(argv: list[str], scale: float | None) -> None:
    assert parse_args(argv).log_delivery_scale == scale


def test_realistic_log_delivery_refuses_a_scale_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--realistic-log-delivery", "0"])
    assert "must be above 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="log_delivery_scale must be above 0"):
        Sandbox(log_delivery_scale=-1)


# -- ivs-sandbox in its own process --------------------------------------------------------------
def test_ivs_sandbox_delivers_to_the_apis_named_in_its_environment(moto_server: str, tmp_path: Path) -> None:
    s3, logs = motoutil.client(moto_server, "s3"), motoutil.client(moto_server, "logs")
    bucket, group = motoutil.unique("archive"), "/ivs/" + motoutil.unique("chat")
    s3.create_bucket(Bucket=bucket)
    logs.create_log_group(logGroupName=group)
    env = shell_environment({"AWS_ENDPOINT_URL_S3": moto_server, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": moto_server,
                             **motoutil.CREDENTIAL_VARIABLES}, tmp_path)
    sandbox = Running([IVS_SANDBOX, "--port", "0"], env=env)
    try:
        assert sandbox.value("chat logs") == f"S3 to {moto_server}, CloudWatch Logs to {moto_server}"
        exports = sandbox.environment
        ivschat = boto3.client("ivschat", endpoint_url=exports["AWS_ENDPOINT_URL_IVSCHAT"],
                               region_name=exports["AWS_DEFAULT_REGION"],
                               aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])
        configs = [ivschat.create_logging_configuration(destinationConfiguration=d)["arn"] for d in
                   ({"s3": {"bucketName": bucket}}, {"cloudWatchLogs": {"logGroupName": group}})]
        room = ivschat.create_room(loggingConfigurationIdentifiers=configs)["arn"]
        token = ivschat.create_chat_token(roomIdentifier=room, userId="alice", capabilities=["SEND_MESSAGE"],
                                          attributes={"displayName": "Alice"})["token"]
        with connect(sandbox.messaging_endpoint, subprotocols=[token], open_timeout=10) as chat:
            chat.send(frames.dumps(frames.SendMessageRequest(content="from a process", request_id="r1")))
            echoed = json.loads(chat.recv(timeout=10))
        assert sandbox.stop() == 0  # stopping delivers what is pending
        assert "Traceback" not in sandbox.stderr()
    finally:
        sandbox.kill()
    for logged in (history.read_s3(bucket, room, client=s3), history.read_cloudwatch(group, room, client=logs)):
        assert [record.payload for record in logged.records] == [echoed]
        assert logged.messages[0].sender.attributes == {"displayName": "Alice"}
