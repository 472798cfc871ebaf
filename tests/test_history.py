"""The chat log reader: the record format, send order, late joiners, pandas, and the AWS readers.

Logs the sandbox really writes to its folders are read back in test_chat_logs.py. The S3 and
CloudWatch Logs readers read what a sandbox delivered to moto's S3 and CloudWatch Logs APIs.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import motoutil
import pytest
from wsutil import join, next_frame, say, send

from ivs_widgets.chat import history
from ivs_widgets.protocol import chat_logs
from ivs_widgets.protocol.formats import parse_time
from ivs_widgets.protocol.frames import ChatEvent, ChatMessage, DeleteMessageEvent, DisconnectUserEvent, Sender

ROOM_ARN = "arn:aws:ivschat:eu-west-1:111122223333:room/AbCdEfGhIjKl"


def message(n: int, send_time: str, content: str | None = None) -> ChatMessage:
    return ChatMessage(id=f"message{n:05d}", content=content or f"hello {n}", send_time=send_time,
                       sender=Sender("alice", {"displayName": "Alice"}), attributes={"n": str(n)})


def delete(message_id: str, send_time: str) -> DeleteMessageEvent:
    return DeleteMessageEvent(id=f"del{message_id[-9:]}", event_name="aws:DELETE_MESSAGE", send_time=send_time,
                              attributes={"MessageID": message_id, "MessageId": message_id, "Reason": "spam"})


def lines(*items: ChatMessage | ChatEvent) -> bytes:
    return "\n".join(chat_logs.encode_record(item) for item in items).encode()


# -- the record ------------------------------------------------------------------------------
@pytest.mark.parametrize(("send_time", "timestamp"), [
    ("2024-05-06T07:08:39.896519733Z", "2024-05-06T07:08:39.896Z"),  # truncated, not rounded
    ("2024-05-06T07:08:39.9999Z", "2024-05-06T07:08:39.999Z"),
    ("2024-05-06T07:08:39.5Z", "2024-05-06T07:08:39.500Z"),
    ("2024-05-06T07:08:39Z", "2024-05-06T07:08:39.000Z"),
])
def test_event_timestamp_is_send_time_truncated_to_milliseconds(send_time: str, timestamp: str) -> None:
    assert chat_logs.event_timestamp(send_time) == timestamp


def test_record_has_the_service_key_order_version_and_the_frame_as_sent() -> None:
    frame = message(1, "2024-05-06T07:08:39.896519733Z", "é \u2028 🎉")
    line = chat_logs.encode_record(frame)
    data = json.loads(line)
    assert list(data) == ["event_timestamp", "type", "payload", "version"]
    assert data["version"] == "1.0" and data["type"] == "MESSAGE"
    assert data["payload"] == {"Type": "MESSAGE", "Id": "message00001", "RequestId": "", "Attributes": {"n": "1"},
                               "Content": "é \u2028 🎉", "SendTime": "2024-05-06T07:08:39.896519733Z",
                               "Sender": {"UserId": "alice", "Attributes": {"displayName": "Alice"}}}
    assert chat_logs.decode_record(line).frame == frame


def test_records_split_on_newlines_only_gzip_or_plain() -> None:
    frames_in = [message(1, "2024-01-01T00:00:01Z", "a\u2028b\u2029c"), message(2, "2024-01-01T00:00:02Z")]
    for data in (lines(*frames_in), gzip.compress(lines(*frames_in))):
        assert [r.frame for r in chat_logs.parse_records(data)] == frames_in


def test_a_line_still_being_appended_waits_for_the_next_read() -> None:
    whole = lines(message(1, "2024-01-01T00:00:01Z")) + b"\n"
    partial = whole + lines(message(2, "2024-01-01T00:00:02Z"))[:40]
    assert [r.frame.id for r in chat_logs.parse_records(partial, appended=True)] == ["message00001"]


def test_a_broken_record_or_object_names_where_it_is() -> None:
    data = lines(message(1, "2024-01-01T00:00:01Z")) + b'\n{"event_timestamp": "x"}'
    with pytest.raises(history.ChatLogError, match=r"room\.log, line 2: record lacks"):
        chat_logs.parse_records(data, "room.log")
    with pytest.raises(history.ChatLogError, match=r"cut\.log\.gz: not a whole gzip"):
        chat_logs.parse_records(gzip.compress(data)[:-8], "cut.log.gz")


# -- history ---------------------------------------------------------------------------------
def test_history_is_in_send_order_across_objects(tmp_path: Path) -> None:
    # Object names carry a hash, so name order is not time order; SendTime (to the ns) is.
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(lines(message(3, "2024-01-01T00:00:01.000000003Z"))))
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(lines(message(1, "2024-01-01T00:00:01.000000001Z"),
                                                            message(2, "2024-01-01T00:00:01.000000002Z"))))
    (tmp_path / ".c.log.gz.tmp").write_bytes(b"half an obj")  # still being written: skipped
    assert [f.id for f in history.read_folder(tmp_path)] == ["message00001", "message00002", "message00003"]


def test_last_messages_leave_out_what_a_later_delete_removed() -> None:
    first, second, third = (message(n, f"2024-01-01T00:00:0{n}Z") for n in (1, 2, 3))
    kick = DisconnectUserEvent(id="kick00000001", event_name="aws:DISCONNECT_USER", send_time="2024-01-01T00:00:05Z",
                               attributes={"UserId": "mallory", "Reason": ""})
    early_delete = delete(third.id, "2024-01-01T00:00:00Z")  # before the message: removes nothing
    logged = history.ChatHistory(chat_logs.decode_record(chat_logs.encode_record(f)) for f in
                                 (first, second, delete(second.id, "2024-01-01T00:00:04Z"), third, kick, early_delete))
    assert logged.last_messages(10) == [first, third]
    assert logged.last_messages(1) == [third]
    assert logged.last_messages(0) == []
    assert logged.messages == [first, second, third]


def test_dataframe_has_a_row_per_frame_with_nanosecond_times() -> None:
    first = message(1, "2024-01-01T00:00:01.123456789Z")
    poll = ChatEvent(id="poll00000001", event_name="app:poll", send_time="2024-01-01T00:00:02Z",
                     attributes={"q": "tea?"})
    logged = history.ChatHistory(chat_logs.decode_record(chat_logs.encode_record(f))
                                 for f in (first, poll, delete(first.id, "2024-01-01T00:00:03Z")))
    table = logged.to_dataframe()
    assert list(table.columns) == list(history.COLUMNS)
    assert list(table["type"]) == ["MESSAGE", "EVENT", "EVENT"]
    assert table["time"][0].value % 1_000_000_000 == 123456789
    assert str(table["time"].dt.tz) == "UTC"
    assert list(table["deleted"]) == [True, False, False]
    assert table["user_id"][0] == "alice" and table["event_name"][1] == "app:poll"
    assert table["attributes"][1] == {"q": "tea?"}


def test_history_module_works_without_pandas_or_boto3_loaded() -> None:
    code = "import sys, ivs_widgets.chat.history; print(sorted({'pandas', 'boto3'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


# -- names -----------------------------------------------------------------------------------
def test_names_follow_the_service_layout(tmp_path: Path) -> None:
    assert chat_logs.s3_prefix(ROOM_ARN) == "AWSLogs/111122223333/IVSChatLogs/1.0/eu-west-1/room_AbCdEfGhIjKl/"
    assert chat_logs.log_stream(ROOM_ARN) == "aws/IVSChatLogs/1.0/room_AbCdEfGhIjKl"
    log_group = chat_logs.local_path(tmp_path, {"cloudWatchLogs": {"logGroupName": "/ivs/chat#1"}}, ROOM_ARN)
    assert log_group == tmp_path / "cloudwatch" / "%2Fivs%2Fchat%231" / "aws/IVSChatLogs/1.0/room_AbCdEfGhIjKl.log"
    stream = chat_logs.local_path(tmp_path, {"firehose": {"deliveryStreamName": ".."}})
    assert stream == tmp_path / "firehose" / "%2E%2E"  # a name never climbs out of its folder


# -- AWS readers, against moto's S3 and CloudWatch Logs APIs ---------------------------------
@pytest.fixture
def delivered(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A sandbox delivering to moto, with a room logged to a bucket and a log group there."""
    s3, logs = motoutil.client(moto_server, "s3"), motoutil.client(moto_server, "logs")
    bucket, group = motoutil.unique("chat-archive"), "/ivs/" + motoutil.unique("chat")
    s3.create_bucket(Bucket=bucket)
    logs.create_log_group(logGroupName=group)
    with motoutil.delivering_sandbox(moto_server, monkeypatch) as sandbox:
        ivschat = sandbox.client()
        configs = [ivschat.create_logging_configuration(destinationConfiguration=destination)["arn"]
                   for destination in ({"s3": {"bucketName": bucket}}, {"cloudWatchLogs": {"logGroupName": group}})]
        room = ivschat.create_room(loggingConfigurationIdentifiers=configs, maximumMessageRatePerSecond=100)
        yield SimpleNamespace(sandbox=sandbox, ivschat=ivschat, room=room, bucket=bucket, group=group, s3=s3,
                              logs=logs)


async def chat(sandbox: Any, ivschat: Any, room_arn: str) -> list[dict[str, Any]]:
    """A short real chat: two people, a message deleted by a moderator, an event; what a viewer saw."""
    async with await join(sandbox, room_arn, "viewer", ()) as viewer, \
            await join(sandbox, room_arn, "alice", attributes={"displayName": "Alice"}) as alice, \
            await join(sandbox, room_arn, "bob", ("SEND_MESSAGE",), {"displayName": "Bob 🎉"}) as bob:
        seen = []
        for ws, text in ((alice, "hello"), (bob, "spam \u2028 here"), (alice, "welcome, Bob"), (bob, "thanks")):
            await say(ws, text)
            seen.append(await next_frame(viewer))
        await send(alice, Action="DELETE_MESSAGE", RequestId="del", Id=seen[1]["Id"], Reason="spam")
        seen.append(await next_frame(viewer))
        await asyncio.to_thread(ivschat.send_event, roomIdentifier=room_arn, eventName="app:poll",
                                attributes={"question": "tea?"})
        seen.append(await next_frame(viewer))
    await asyncio.to_thread(sandbox.chat_logs.flush)  # delivered through the APIs by the time it returns
    return seen


def check_history(logged: history.ChatHistory, seen: list[dict[str, Any]]) -> None:
    assert [record.payload for record in logged.records] == seen  # every frame, in send order, as sent
    assert [(m.sender.attributes.get("displayName"), m.content) for m in logged.last_messages(10)] == [
        ("Alice", "hello"), ("Alice", "welcome, Bob"), ("Bob 🎉", "thanks")]  # the deleted one left out
    assert [f.event_name for f in logged.frames if isinstance(f, ChatEvent)] == ["aws:DELETE_MESSAGE", "app:poll"]


async def test_read_s3_reads_back_what_the_sandbox_delivered_to_the_s3_api(delivered: Any) -> None:
    seen = await chat(delivered.sandbox, delivered.ivschat, delivered.room["arn"])
    check_history(history.read_s3(delivered.bucket, delivered.room["arn"], client=delivered.s3), seen)
    keys = [item["Key"] for item in delivered.s3.list_objects_v2(Bucket=delivered.bucket)["Contents"]]
    account, room_id = delivered.sandbox.config.account_id, delivered.room["id"]
    layout = (rf"AWSLogs/{account}/IVSChatLogs/1\.0/us-east-1/room_{room_id}/\d{{4}}/\d\d/\d\d/\d\d/"
              rf"{account}_IVSChatLogs_1\.0_us-east-1_room_{room_id}_\d{{8}}T\d{{4}}Z_[0-9a-f]{{16}}\.log\.gz")
    assert keys and all(re.fullmatch(layout, key) for key in keys), keys


async def test_read_cloudwatch_reads_back_what_the_sandbox_delivered_to_the_logs_api(delivered: Any) -> None:
    seen = await chat(delivered.sandbox, delivered.ivschat, delivered.room["arn"])
    check_history(history.read_cloudwatch(delivered.group, delivered.room["arn"], client=delivered.logs), seen)
    streams = delivered.logs.describe_log_streams(logGroupName=delivered.group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [f"aws/IVSChatLogs/1.0/room_{delivered.room['id']}"]
    events = delivered.logs.get_log_events(logGroupName=delivered.group, logStreamName=streams[0]["logStreamName"],
                                           startFromHead=True)["events"]
    assert [e["timestamp"] for e in events] == [  # each event is stamped with its record's event_timestamp
        int(parse_time(json.loads(e["message"])["event_timestamp"]).timestamp() * 1000 + 0.5) for e in events]
