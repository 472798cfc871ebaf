"""Chat logs read back: readers that turn stored records into frames, and what you do with them.

The record format and the storage layouts are :mod:`ivs_widgets.protocol.chat_logs` (the sandbox
writes with the same module). Readers return a :class:`ChatHistory`: typed frames, a pandas
DataFrame, and the recent messages a late joiner should see.

All readers share one parser; only the fetching differs (local files, S3 objects, log events).
pandas and boto3 are imported only by the functions that need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivs_widgets.protocol.chat_logs import (
    CLOUDWATCH_SUFFIX,
    S3_SUFFIX,
    ChatLogError,
    LoggedFrame,
    LogRecord,
    local_path,
    log_stream,
    parse_records,
    s3_prefix,
)
from ivs_widgets.protocol.frames import ChatMessage, DeleteMessageEvent, Frame

if TYPE_CHECKING:
    import pandas

__all__ = ["COLUMNS", "ChatHistory", "ChatLogError", "last_messages", "read_cloudwatch", "read_folder",
           "read_s3", "read_sandbox"]


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

    def to_dataframe(self) -> pandas.DataFrame:
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
