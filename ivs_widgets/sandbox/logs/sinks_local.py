"""Local stand-ins for the S3, CloudWatch Logs and Firehose destinations, under the data directory.

- S3: ``s3/<bucket>/AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<id>/YYYY/MM/DD/HH/…Z_<hash>.log.gz``
- CloudWatch Logs: ``cloudwatch/<log group>/aws/IVSChatLogs/1.0/room_<id>.log`` (the log stream)
- Firehose: ``firehose/<stream>/YYYY/MM/DD/HH/<stream>-YYYY-MM-DD-HH-MM-SS-<hash>``

Objects are written whole (temporary file, fsync, rename) and CloudWatch lines are appended whole,
so a reader never sees a torn record. Nothing checks that a destination "exists": a folder is made
on the first write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ivs_widgets.protocol import chat_logs as layout
from ivs_widgets.sandbox.logs.batches import Record, firehose_object, s3_object


@dataclass(frozen=True)
class S3Folder:
    """A room's objects in a bucket's folder: one gzip object per batch."""

    kind: ClassVar[str] = "s3"
    root: Path
    bucket: str
    room_arn: str

    def write(self, records: list[Record]) -> None:
        key, data = s3_object(self.room_arn, records)
        _write_whole(layout.local_path(self.root, {"s3": {"bucketName": self.bucket}}) / key, data)

    def __str__(self) -> str:
        return f"S3 bucket {self.bucket!r} (folder under {self.root})"


@dataclass(frozen=True)
class CloudWatchFile:
    """A room's log stream as a file in its log group's folder: one record per line, appended."""

    kind: ClassVar[str] = "cloudWatchLogs"
    root: Path
    log_group: str
    room_arn: str

    def write(self, records: list[Record]) -> None:
        path = layout.local_path(self.root, {"cloudWatchLogs": {"logGroupName": self.log_group}}, self.room_arn)
        _append_whole(path, "".join(r.line + "\n" for r in records).encode())

    def __str__(self) -> str:
        return f"CloudWatch Logs group {self.log_group!r} (folder under {self.root})"


@dataclass(frozen=True)
class FirehoseFolder:
    """A delivery stream's folder (shared by every room that uses it): one object per batch."""

    kind: ClassVar[str] = "firehose"
    root: Path
    stream: str

    def write(self, records: list[Record]) -> None:
        name, data = firehose_object(self.stream, records)
        _write_whole(layout.local_path(self.root, {"firehose": {"deliveryStreamName": self.stream}}) / name, data)

    def __str__(self) -> str:
        return f"Firehose stream {self.stream!r} (folder under {self.root})"


def _write_whole(path: Path, data: bytes) -> None:
    """Write a new file so that it appears complete or not at all, and survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")  # readers skip dot files
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _append_whole(path: Path, data: bytes) -> None:
    """Append whole lines: a write that fails part-way is cut back so no torn line stays behind."""
    new_file = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
    if new_file:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
