"""A batch of chat log records as each destination stores it, wherever that destination is.

The local folders (:mod:`.sinks_local`) and the AWS APIs (:mod:`.sinks_aws`) store the same bytes
under the same names; only the transport differs. ``ivs_widgets.protocol.chat_logs`` owns the
record format and the names.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ivs_widgets.protocol import chat_logs as layout
from ivs_widgets.protocol.frames import ChatEvent, ChatMessage

#: Hex digits of the content hash in object names.
DIGEST_LENGTH = 16


@dataclass(frozen=True)
class Record:
    """One record: the line as stored, and the frame it came from (for its send time)."""

    line: str
    frame: ChatMessage | ChatEvent


class Sink(Protocol):
    """Where one room's records go for one destination of one logging configuration."""

    #: The ``destinationConfiguration`` member it stands for: ``s3``, ``cloudWatchLogs`` or ``firehose``.
    kind: ClassVar[str]

    def write(self, records: list[Record]) -> None:
        """Store the batch whole, or raise (the writer reports it and drops the batch)."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_LENGTH]


def s3_object(room_arn: str, records: list[Record]) -> tuple[str, bytes]:
    """(key, body) of the S3 object of a batch: gzip, records separated by newlines."""
    data = gzip.compress("\n".join(r.line for r in records).encode(), mtime=0)
    return layout.s3_key(room_arn, records[0].frame.sent_at, digest(data)), data


def firehose_object(stream: str, records: list[Record]) -> tuple[str, bytes]:
    """(name, body) of a delivery stream's batch: a line per record."""
    data = "".join(r.line + "\n" for r in records).encode()
    return layout.firehose_key(stream, records[0].frame.sent_at, digest(data)), data


def epoch_millis(record: Record) -> int:
    """The record's time as CloudWatch Logs stores an event's: milliseconds since the epoch (its
    ``event_timestamp``, which is the send time cut to milliseconds)."""
    sent = record.frame.sent_at
    return calendar.timegm(sent.utctimetuple()) * 1000 + sent.microsecond // 1000
