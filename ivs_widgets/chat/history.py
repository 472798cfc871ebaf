"""Chat logs: the record format, where Amazon IVS Chat puts them, and readers that turn them back into frames.

A room with logging configurations has every delivered MESSAGE and EVENT written, as one JSON
record per frame, to S3, CloudWatch Logs or Firehose. The sandbox writes the same records to local
folders laid out like those services (``ivs_widgets.sandbox.chat_logs``); the names live here so the
writer and the readers cannot drift apart. Readers return a :class:`ChatHistory`: typed frames, a
pandas DataFrame, and the recent messages a late joiner should see.

All readers share one parser; only the fetching differs (local files, S3 objects, log events).
pandas and boto3 are imported only by the functions that need them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator
from urllib.parse import quote

from ivs_widgets.chat.frames import (ChatErrorFrame, ChatEvent, ChatMessage, DeleteMessageEvent, Frame, FrameError,
                                     dumps, from_wire)

if TYPE_CHECKING:
    import pandas

#: The ``version`` of every record the service writes.
LOG_VERSION = "1.0"
#: Keys of a record, in the order the service writes them.
RECORD_KEYS = ("event_timestamp", "type", "payload", "version")

#: Local folders of the three destination kinds under a sandbox's data directory.
S3_FOLDER, CLOUDWATCH_FOLDER, FIREHOSE_FOLDER = "s3", "cloudwatch", "firehose"
#: Suffixes of the files that hold records: gzip S3 objects and appended CloudWatch streams.
S3_SUFFIX, CLOUDWATCH_SUFFIX = ".log.gz", ".log"

LoggedFrame = ChatMessage | ChatEvent


class ChatLogError(ValueError):
    """A chat log that is not made of well-formed records."""


# -- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogRecord:
    """One logged frame: the record's members, with the payload also parsed into a typed frame."""

    event_timestamp: str
    type: str
    payload: dict[str, Any]
    version: str
    frame: LoggedFrame


def event_timestamp(send_time: str) -> str:
    """A frame's ``SendTime`` truncated (not rounded) to milliseconds, as records carry it."""
    head, _, fraction = send_time.rstrip("Z").partition(".")
    return f"{head}.{(fraction + '000')[:3]}Z"


def encode_record(frame: LoggedFrame) -> str:
    """One record as compact JSON. Built around ``dumps`` so the payload is byte for byte the
    frame the clients received."""
    return (f'{{"event_timestamp":"{event_timestamp(frame.send_time)}","type":"{frame.type}",'
            f'"payload":{dumps(frame)},"version":"{LOG_VERSION}"}}')


def decode_record(line: str) -> LogRecord:
    """Parse one record; ChatLogError if it is not a record of a MESSAGE or EVENT."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ChatLogError(f"record is not JSON: {exc}") from None
    if not isinstance(data, dict) or not set(RECORD_KEYS) <= data.keys():
        raise ChatLogError(f"record lacks one of {', '.join(RECORD_KEYS)}")
    try:
        frame = from_wire(data["payload"])
    except FrameError as exc:
        raise ChatLogError(f"record payload is not a chat frame: {exc}") from None
    if isinstance(frame, ChatErrorFrame):
        raise ChatLogError("chat logs hold MESSAGE and EVENT frames only")
    return LogRecord(data["event_timestamp"], data["type"], data["payload"], data["version"], frame)


def parse_records(data: bytes, source: str = "", *, appended: bool = False) -> list[LogRecord]:
    """The records of one object or file: gzip or plain, one record per line.

    ``appended`` is for files that grow by appends (CloudWatch streams): a last line without its
    newline is a write still under way and is left for the next read.
    """
    try:
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ChatLogError(f"{source or 'chat log'}: not a whole gzip or UTF-8 text object: {exc}") from None
    lines = text.split("\n")  # not splitlines(): U+2028 inside a message is not a record boundary
    if appended:
        lines = lines[:-1]
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(decode_record(line))
            except ChatLogError as exc:
                raise ChatLogError(f"{source or 'chat log'}, line {number}: {exc}") from None
    return records


# -- where the service puts them ---------------------------------------------------------------
def _room_parts(room_arn: str) -> tuple[str, str, str]:
    """(region, account, room id) of ``arn:aws:ivschat:REGION:ACCOUNT:room/ID``."""
    parts = room_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("room/"):
        raise ValueError(f"not a chat room ARN: {room_arn!r}")
    return parts[3], parts[4], parts[5][len("room/"):]


def s3_prefix(room_arn: str) -> str:
    """The key prefix of a room's log objects in the configured bucket."""
    region, account, room_id = _room_parts(room_arn)
    return f"AWSLogs/{account}/IVSChatLogs/{LOG_VERSION}/{region}/room_{room_id}/"


def s3_key(room_arn: str, when: datetime, digest: str) -> str:
    """The key of one gzip log object, in the hour folder of ``when`` (UTC)."""
    region, account, room_id = _room_parts(room_arn)
    return (f"{s3_prefix(room_arn)}{when:%Y/%m/%d/%H}/"
            f"{account}_IVSChatLogs_{LOG_VERSION}_{region}_room_{room_id}_{when:%Y%m%dT%H%M}Z_{digest}{S3_SUFFIX}")


def log_stream(room_arn: str) -> str:
    """The CloudWatch Logs stream of a room, inside the configured log group."""
    return f"aws/IVSChatLogs/{LOG_VERSION}/room_{_room_parts(room_arn)[2]}"


def firehose_key(stream_name: str, when: datetime, digest: str) -> str:
    """The name of one batch of a delivery stream, in the hour folder of ``when`` (UTC)."""
    return f"{when:%Y/%m/%d/%H}/{stream_name}-{when:%Y-%m-%d-%H-%M-%S}-{digest}"


def folder_name(name: str) -> str:
    """A bucket, log group or delivery stream name as one safe folder name: ``/``, ``#`` and the
    like are percent-encoded (``/ivs/chat`` → ``%2Fivs%2Fchat``), and ``.``/``..`` never escape."""
    encoded = quote(name, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def local_path(data_dir: Path | str, destination: dict[str, Any], room_arn: str | None = None) -> Path:
    """Where a sandbox with ``data_dir`` writes the logs of one destination (a logging
    configuration's ``destinationConfiguration``): the room's folder or file when ``room_arn`` is
    given (S3, CloudWatch Logs), else the whole bucket, log group or delivery stream."""
    root = Path(data_dir)
    if "s3" in destination:
        bucket = root / S3_FOLDER / folder_name(destination["s3"]["bucketName"])
        return bucket / s3_prefix(room_arn) if room_arn else bucket
    if "cloudWatchLogs" in destination:
        group = root / CLOUDWATCH_FOLDER / folder_name(destination["cloudWatchLogs"]["logGroupName"])
        return group / (log_stream(room_arn) + CLOUDWATCH_SUFFIX) if room_arn else group
    if "firehose" in destination:
        return root / FIREHOSE_FOLDER / folder_name(destination["firehose"]["deliveryStreamName"])
    raise ValueError(f"no known destination in {destination!r}")


# -- history ---------------------------------------------------------------------------------
def _send_order(record: LogRecord) -> tuple[str, str]:
    """Sort key in true send order: SendTime has a fixed-width head and up to nine fraction digits."""
    head, _, fraction = record.frame.send_time.rstrip("Z").partition(".")
    return head, fraction.ljust(9, "0")


def last_messages(frames_in_order: Iterable[Frame], n: int) -> list[ChatMessage]:
    """The newest ``n`` messages, oldest first, leaving out those a later aws:DELETE_MESSAGE removed:
    what a viewer who joins now should see (e.g. to pre-fill a chat panel)."""
    kept: dict[str, ChatMessage] = {}
    for frame in frames_in_order:
        if isinstance(frame, ChatMessage):
            kept[frame.id] = frame
        elif isinstance(frame, DeleteMessageEvent):
            kept.pop(frame.message_id, None)
    return list(kept.values())[-n:] if n > 0 else []


class ChatHistory:
    """Logged frames in send order, as records were stored (duplicates, if any, are kept)."""

    def __init__(self, records: Iterable[LogRecord]) -> None:
        self.records: list[LogRecord] = sorted(records, key=_send_order)  # stable: ties keep file order

    @property
    def frames(self) -> list[LoggedFrame]:
        return [record.frame for record in self.records]

    @property
    def messages(self) -> list[ChatMessage]:
        """Every logged message, deleted ones included (see :meth:`last_messages`)."""
        return [f for f in self.frames if isinstance(f, ChatMessage)]

    def last_messages(self, n: int) -> list[ChatMessage]:
        return last_messages(self.frames, n)

    def to_dataframe(self) -> "pandas.DataFrame":
        """One row per frame; ``time`` is the SendTime (UTC, to the nanosecond), ``deleted`` marks
        messages a later aws:DELETE_MESSAGE removed."""
        import pandas  # optional: the rest of the package works without it

        deleted = {f.message_id for f in self.frames if isinstance(f, DeleteMessageEvent)}
        table = pandas.DataFrame([_row(frame, deleted) for frame in self.frames], columns=list(COLUMNS))
        table["time"] = pandas.to_datetime(table["time"], utc=True, format="ISO8601")
        return table

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[LoggedFrame]:
        return iter(self.frames)

    def __repr__(self) -> str:
        return f"<ChatHistory {len(self.records)} frames, {len(self.messages)} messages>"


#: Columns of :meth:`ChatHistory.to_dataframe`.
COLUMNS = ("time", "type", "id", "event_name", "user_id", "content", "attributes", "sender_attributes",
           "request_id", "deleted")


def _row(frame: LoggedFrame, deleted: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"time": frame.send_time, "type": frame.type, "id": frame.id, "event_name": None,
                           "user_id": None, "content": None, "attributes": dict(frame.attributes or {}),
                           "sender_attributes": None, "request_id": frame.request_id, "deleted": False}
    if isinstance(frame, ChatMessage):
        row.update(user_id=frame.sender.user_id, content=frame.content,
                   sender_attributes=dict(frame.sender.attributes), deleted=frame.id in deleted)
    else:
        row["event_name"] = frame.event_name
    return row


# -- readers ---------------------------------------------------------------------------------
def read_folder(path: Path | str) -> ChatHistory:
    """Every record under ``path`` (a folder or one file) in any of the sandbox's three layouts:
    ``*.log.gz`` S3 objects, ``*.log`` CloudWatch streams, Firehose batches. Names starting with
    ``.`` are objects still being written and are skipped."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    records: list[LogRecord] = []
    for file in files:
        if file.name.startswith("."):
            continue
        appended = file.name.endswith(CLOUDWATCH_SUFFIX)
        records.extend(parse_records(file.read_bytes(), str(file), appended=appended))
    return ChatHistory(records)


def read_sandbox(data_dir: Path | str, destination: dict[str, Any], room_arn: str | None = None) -> ChatHistory:
    """The logs a sandbox wrote for one destination, e.g. ``read_sandbox(sb.data_dir,
    config["destinationConfiguration"], room["arn"])``. Firehose records do not name their room,
    so a delivery stream shared by rooms reads back mixed."""
    path = local_path(data_dir, destination, room_arn)
    return read_folder(path) if path.exists() else ChatHistory([])


def read_s3(bucket: str, room_arn: str, *, client: Any = None) -> ChatHistory:
    """A room's logs from the S3 bucket of its logging configuration, on AWS."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    records: list[LogRecord] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=s3_prefix(room_arn)):
        for item in page.get("Contents", []):
            if item["Key"].endswith(S3_SUFFIX):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                records.extend(parse_records(body, f"s3://{bucket}/{item['Key']}"))
    return ChatHistory(records)


def read_cloudwatch(log_group: str, room_arn: str, *, client: Any = None, **window: int) -> ChatHistory:
    """A room's logs from the CloudWatch Logs group of its logging configuration, on AWS.
    ``window`` passes ``startTime``/``endTime`` (epoch milliseconds) to FilterLogEvents."""
    if client is None:
        import boto3

        client = boto3.client("logs")
    lines: list[str] = []
    for page in client.get_paginator("filter_log_events").paginate(
            logGroupName=log_group, logStreamNames=[log_stream(room_arn)], **window):
        lines.extend(event["message"] for event in page.get("events", []))
    return ChatHistory(parse_records("\n".join(lines).encode(), f"{log_group}:{log_stream(room_arn)}"))
