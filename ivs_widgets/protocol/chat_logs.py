"""Chat logs as stored: the record format, and where Amazon IVS Chat puts the records.

A room with logging configurations has every delivered MESSAGE and EVENT written, as one JSON
record per frame, to S3, CloudWatch Logs or Firehose. The sandbox writes the same records to local
folders laid out like those services (``ivs_widgets.sandbox.logs``); the client reads them back
(``ivs_widgets.chat.history``). The format and the names live here so writer and readers cannot drift.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ivs_widgets.protocol.errors import IvsWidgetsError
from ivs_widgets.protocol.formats import arn_parts
from ivs_widgets.protocol.frames import ChatErrorFrame, ChatEvent, ChatMessage, FrameError, dumps, from_wire

#: The ``version`` of every record the service writes.
LOG_VERSION = "1.0"
#: Keys of a record, in the order the service writes them.
RECORD_KEYS = ("event_timestamp", "type", "payload", "version")

#: Local folders of the three destination kinds under a sandbox's data directory.
S3_FOLDER, CLOUDWATCH_FOLDER, FIREHOSE_FOLDER = "s3", "cloudwatch", "firehose"
#: Suffixes of the files that hold records: gzip S3 objects and appended CloudWatch streams.
S3_SUFFIX, CLOUDWATCH_SUFFIX = ".log.gz", ".log"

LoggedFrame = ChatMessage | ChatEvent


class ChatLogError(IvsWidgetsError, ValueError):
    """A chat log that is not made of well-formed records."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="ChatLogError")


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
    """(region, account, room id) of a room ARN."""
    return arn_parts(room_arn, "room")


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
