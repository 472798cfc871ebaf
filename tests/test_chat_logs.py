"""Chat logging in the sandbox, over real sockets: each destination holds every delivered frame once, in
order, byte for byte, in whole files; a broken destination spares chat and the other destinations."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from wsutil import TIMEOUT, join, say, send

from ivs_widgets.chat import history
from ivs_widgets.protocol import chat_logs
from ivs_widgets.protocol.formats import parse_time
from ivs_widgets.sandbox import Sandbox

S3 = {"s3": {"bucketName": "chat-archive"}}
CLOUDWATCH = {"cloudWatchLogs": {"logGroupName": "/ivs/chat#logs"}}
FIREHOSE = {"firehose": {"deliveryStreamName": "chat-stream"}}
DESTINATIONS = {"s3": S3, "cloudWatchLogs": CLOUDWATCH, "firehose": FIREHOSE}
BURST = 1000


class Collector:
    """Reads every frame a socket receives, so tests can await "n frames so far" instead of sleeping."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.raw: list[str] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            assert isinstance(raw, str)
            self.raw.append(raw)
            self._arrived.set()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.raw]

    async def until(self, count: int, timeout: float = TIMEOUT) -> None:
        """Wait for ``count`` frames in all; an ERROR frame (e.g. 429) fails the test at once."""
        async def enough() -> None:
            while len(self.raw) < count:
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(enough(), timeout)
        errors = [frame for frame in self.frames if frame["Type"] == "ERROR"]
        assert not errors, errors

    async def close(self) -> None:
        await self.ws.close()
        await self._task


def logging_room(ivschat: Any, *destinations: dict[str, Any], **settings: Any) -> dict[str, Any]:
    configs = [ivschat.create_logging_configuration(destinationConfiguration=d)["arn"] for d in destinations]
    return ivschat.create_room(loggingConfigurationIdentifiers=configs, **settings)


async def flush(sandbox: Sandbox) -> None:
    assert sandbox.chat_logs is not None
    await asyncio.to_thread(sandbox.chat_logs.flush)


def logged(sandbox: Sandbox, destination: dict[str, Any], room: dict[str, Any]) -> list[dict[str, Any]]:
    """The payloads read back with the history reader, in send order."""
    assert sandbox.data_dir is not None
    return [record.payload for record in history.read_sandbox(sandbox.data_dir, destination, room["arn"]).records]


def contents(payloads: list[dict[str, Any]]) -> list[str]:
    return [p["Content"] for p in payloads if p["Type"] == "MESSAGE"]


def stored_lines(path: Path) -> list[str]:
    """Every record line under ``path`` read without our reader: each gzip object must decompress
    whole, objects are taken in the order of their first record, and no temporary file is left."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")], "a temporary file was left behind"
    objects = []
    for file in files:
        data = file.read_bytes()
        text = gzip.decompress(data).decode() if file.name.endswith(".log.gz") else data.decode()
        objects.append([line for line in text.split("\n") if line])
    objects.sort(key=lambda lines: parse_time(json.loads(lines[0])["payload"]["SendTime"]))
    return [line for lines in objects for line in lines]


def expected_line(raw: str) -> str:
    """The record the service writes for a frame sent as ``raw``: key order, version, payload bytes."""
    frame = json.loads(raw)
    return (f'{{"event_timestamp":"{chat_logs.event_timestamp(frame["SendTime"])}","type":"{frame["Type"]}",'
            f'"payload":{raw},"version":"1.0"}}')


def burst_content(n: int) -> tuple[str, dict[str, str] | None]:
    """Varied messages: plain, non-ASCII with a line separator (not a record break), with attributes."""
    if n % 7 == 0:
        return f"née {n} \u2028 ✓ 🎉 \"quoted\" \\ slash\nline", None
    return f"message {n}", ({"seq": str(n)} if n % 3 == 0 else None)


async def test_burst_reaches_every_destination_once_in_order_and_whole(sandbox: Sandbox, ivschat: Any) -> None:
    room = logging_room(ivschat, S3, CLOUDWATCH, FIREHOSE, maximumMessageRatePerSecond=100)
    watcher = Collector(await join(sandbox, room["arn"], "watcher", ()))
    sender = Collector(await join(sandbox, room["arn"], "alice", ("SEND_MESSAGE",), {"displayName": "Alice"}))
    rate = room["maximumMessageRatePerSecond"]
    snapshots: list[dict[str, list[str]]] = []
    for first in range(0, BURST, rate):
        for n in range(first, first + rate):
            text, attributes = burst_content(n)
            await say(sender.ws, text, f"req-{n}", **({"Attributes": attributes} if attributes else {}))
        await sender.until(first + rate)
        window_ends = time.monotonic() + 1.0
        # Read every destination while the writer thread may be writing: never a torn object or line.
        snapshots.append(await asyncio.to_thread(
            lambda: {name: [f.id for f in history.read_sandbox(sandbox.data_dir, d, room["arn"]).frames]
                     for name, d in DESTINATIONS.items()}))
        # The room admits `rate` messages per sliding second: pace the next batch past that window
        # (a limit defined in time, so the only timed wait in these tests).
        await asyncio.sleep(max(0.0, window_ends - time.monotonic()))
    await watcher.until(BURST)
    await flush(sandbox)

    delivered = watcher.frames
    assert contents(delivered) == [burst_content(n)[0] for n in range(BURST)]
    ids = [frame["Id"] for frame in delivered]
    for name, destination in DESTINATIONS.items():
        assert logged(sandbox, destination, room) == delivered, name
        assert stored_lines(chat_logs.local_path(sandbox.data_dir, destination, room["arn"])) == \
            [expected_line(raw) for raw in watcher.raw], name
        for snapshot in snapshots:  # what a reader saw mid-burst was always a clean prefix
            assert snapshot[name] == ids[:len(snapshot[name])], name
    assert any(0 < len(s["s3"]) < BURST for s in snapshots), "no read overlapped the burst"
    await watcher.close()
    await sender.close()


async def test_events_deletions_and_disconnects_are_logged(sandbox: Sandbox, ivschat: Any) -> None:
    room = logging_room(ivschat, S3, CLOUDWATCH, FIREHOSE)
    watcher = Collector(await join(sandbox, room["arn"], "watcher", ()))
    moderator = Collector(await join(sandbox, room["arn"], "mod"))
    mallory = Collector(await join(sandbox, room["arn"], "mallory", ("SEND_MESSAGE",)))
    await say(moderator.ws, "welcome")
    await watcher.until(1)
    await say(mallory.ws, "spam")
    await watcher.until(2)
    await say(moderator.ws, "rules")
    await watcher.until(3)
    welcome, spam, _ = (frame["Id"] for frame in watcher.frames)
    await send(moderator.ws, Action="DELETE_MESSAGE", RequestId="del-1", Id=spam, Reason="spam")
    await watcher.until(4)
    await asyncio.to_thread(ivschat.delete_message, roomIdentifier=room["arn"], id=welcome, reason="old")
    await asyncio.to_thread(ivschat.send_event, roomIdentifier=room["arn"], eventName="app:poll",
                            attributes={"question": "tea?"})
    await send(moderator.ws, Action="DISCONNECT_USER", RequestId="kick-1", UserId="mallory", Reason="spam")
    await watcher.until(7)
    await flush(sandbox)

    delivered = watcher.frames
    assert [(f["Type"], f.get("EventName")) for f in delivered[3:]] == [
        ("EVENT", "aws:DELETE_MESSAGE"), ("EVENT", "aws:DELETE_MESSAGE"), ("EVENT", "app:poll"),
        ("EVENT", "aws:DISCONNECT_USER")]
    for name, destination in DESTINATIONS.items():
        assert logged(sandbox, destination, room) == delivered, name
        records = [json.loads(line) for line in
                   stored_lines(chat_logs.local_path(sandbox.data_dir, destination, room["arn"]))]
        assert [r["type"] for r in records] == [f["Type"] for f in delivered], name
        assert all(list(r) == ["event_timestamp", "type", "payload", "version"] and r["version"] == "1.0"
                   for r in records), name
        late_joiner = history.read_sandbox(sandbox.data_dir, destination, room["arn"]).last_messages(10)
        assert [m.content for m in late_joiner] == ["rules"], name
    for collector in (watcher, moderator, mallory):
        await collector.close()


async def test_failing_destination_spares_chat_and_the_other_destinations(
        sandbox: Sandbox, ivschat: Any, caplog: pytest.LogCaptureFixture) -> None:
    broken = {"s3": {"bucketName": "broken-bucket"}}
    bucket_folder = chat_logs.local_path(sandbox.data_dir, broken)
    bucket_folder.parent.mkdir(parents=True)
    bucket_folder.write_text("a file where the bucket's folder should be")  # unwritable, even for root
    room = logging_room(ivschat, broken, CLOUDWATCH, FIREHOSE, maximumMessageRatePerSecond=100)
    alice = Collector(await join(sandbox, room["arn"], "alice"))
    caplog.set_level(logging.WARNING, logger="ivs_widgets.sandbox.chat_logs")
    for batch in range(2):  # two batches fail: the log says so once (one line per problem per interval)
        for n in range(5):
            await say(alice.ws, f"early {batch * 5 + n}")
        await alice.until(5 * (batch + 1))  # chat went on
        await flush(sandbox)
    reports = [r.getMessage() for r in caplog.records if "broken-bucket" in r.getMessage()]
    assert len(reports) == 1 and "records dropped" in reports[0] and "(2 times" not in reports[0], reports
    assert logged(sandbox, broken, room) == []
    for destination in (CLOUDWATCH, FIREHOSE):
        assert contents(logged(sandbox, destination, room)) == [f"early {n}" for n in range(10)]

    bucket_folder.unlink()  # the destination recovers: later batches reach it again
    for n in range(3):
        await say(alice.ws, f"late {n}")
    await alice.until(13)
    await flush(sandbox)
    assert contents(logged(sandbox, broken, room)) == [f"late {n}" for n in range(3)]
    assert contents(logged(sandbox, CLOUDWATCH, room)) == [f"early {n}" for n in range(10)] + \
        [f"late {n}" for n in range(3)]
    await alice.close()


async def test_configuration_and_room_updates_apply_to_later_messages(sandbox: Sandbox, ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=CLOUDWATCH)["arn"]
    room = ivschat.create_room(loggingConfigurationIdentifiers=[config])
    alice = Collector(await join(sandbox, room["arn"], "alice"))

    async def say_and_wait(text: str) -> None:
        await say(alice.ws, text)
        await alice.until(len(alice.raw) + 1)

    await say_and_wait("to cloudwatch")
    await asyncio.to_thread(ivschat.update_logging_configuration, identifier=config,
                            destinationConfiguration=FIREHOSE)
    await say_and_wait("to firehose")
    await asyncio.to_thread(ivschat.update_room, identifier=room["arn"], loggingConfigurationIdentifiers=[])
    await say_and_wait("not logged")
    await asyncio.to_thread(ivschat.delete_logging_configuration, identifier=config)
    s3_config = ivschat.create_logging_configuration(destinationConfiguration=S3)["arn"]
    await asyncio.to_thread(ivschat.update_room, identifier=room["arn"], loggingConfigurationIdentifiers=[s3_config])
    await say_and_wait("to s3")
    await flush(sandbox)
    assert contents(logged(sandbox, CLOUDWATCH, room)) == ["to cloudwatch"]
    assert contents(logged(sandbox, FIREHOSE, room)) == ["to firehose"]
    assert contents(logged(sandbox, S3, room)) == ["to s3"]
    await alice.close()


async def test_rooms_sharing_a_configuration_keep_apart_where_the_service_does(sandbox: Sandbox,
                                                                              ivschat: Any) -> None:
    configs = [ivschat.create_logging_configuration(destinationConfiguration=d)["arn"] for d in DESTINATIONS.values()]
    rooms = [ivschat.create_room(loggingConfigurationIdentifiers=configs) for _ in range(2)]
    quiet = ivschat.create_room()  # no logging configuration: nothing is written for it
    sockets = [Collector(await join(sandbox, r["arn"], "alice")) for r in (*rooms, quiet)]
    for collector, text in zip(sockets, ("in room 0", "in room 1", "unlogged")):
        await say(collector.ws, text)
        await collector.until(1)
    await flush(sandbox)
    for n, room in enumerate(rooms):
        assert contents(logged(sandbox, S3, room)) == [f"in room {n}"]
        assert contents(logged(sandbox, CLOUDWATCH, room)) == [f"in room {n}"]
    # Firehose records do not name their room: one delivery stream carries both rooms.
    assert sorted(contents(logged(sandbox, FIREHOSE, rooms[0]))) == ["in room 0", "in room 1"]
    everything = history.read_folder(sandbox.data_dir)
    assert "unlogged" not in [m.content for m in everything.messages]
    assert len(everything) == 2 * 3
    for collector in sockets:
        await collector.close()


def test_stop_writes_pending_records_and_keeps_a_given_data_dir(tmp_path: Path) -> None:
    with Sandbox(data_dir=tmp_path) as sb:
        ivschat = sb.client()
        room = logging_room(ivschat, CLOUDWATCH, S3)
        sent = [ivschat.send_event(roomIdentifier=room["arn"], eventName=f"app:tick{n}")["id"] for n in range(3)]
    for destination in (CLOUDWATCH, S3):  # no flush(): stopping wrote them
        assert [f.id for f in history.read_sandbox(tmp_path, destination, room["arn"]).frames] == sent


def test_default_data_dir_is_temporary() -> None:
    sb = Sandbox().start()
    try:
        data_dir = sb.data_dir
        assert data_dir is not None and data_dir.is_dir()
    finally:
        sb.stop()
    assert not data_dir.exists()
