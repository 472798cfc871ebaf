"""Chat logging: local stand-ins for the S3, CloudWatch Logs and Firehose destinations.

Every MESSAGE and EVENT delivered in a room with ACTIVE logging configurations becomes one record
(``ivs_widgets.protocol.chat_logs`` owns the format and the names) in each configured destination,
under the sandbox's data directory:

- S3: ``s3/<bucket>/AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<id>/YYYY/MM/DD/HH/…Z_<hash>.log.gz``
- CloudWatch Logs: ``cloudwatch/<log group>/aws/IVSChatLogs/1.0/room_<id>.log`` (the log stream)
- Firehose: ``firehose/<stream>/YYYY/MM/DD/HH/<stream>-YYYY-MM-DD-HH-MM-SS-<hash>``

The messaging server calls :class:`ChatLogs` for each delivered frame on its event loop, so that
call only looks the room up in a cache and queues the frame; a writer thread batches records and
writes them every ``flush_interval`` seconds, on :meth:`ChatLogs.flush` and on close. Objects are
written whole (temporary file, fsync, rename) and CloudWatch lines are appended whole, so a reader
never sees a torn record. A destination that fails is logged and its batch dropped; chat and the
other destinations carry on.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivs_widgets.protocol import chat_logs as layout
from ivs_widgets.protocol.frames import ChatEvent, ChatMessage, Frame
from ivs_widgets.sandbox.core.state import LOGGING_CONFIGURATION, ROOM, State

log = logging.getLogger("ivs_widgets.sandbox.chat_logs")

#: How long records wait in memory before they are written (AWS takes ~10 s to ~5 min).
FLUSH_INTERVAL_SECONDS = 1.0
#: Hex digits of the content hash in object names.
DIGEST_LENGTH = 16


@dataclass(frozen=True)
class _Record:
    line: str
    frame: ChatMessage | ChatEvent


# -- destinations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Sink:
    """A room's objects in a bucket: one gzip object per batch, records separated by newlines."""

    bucket: str
    room_arn: str

    def write(self, root: Path, records: list[_Record]) -> None:
        data = gzip.compress("\n".join(r.line for r in records).encode(), mtime=0)
        key = layout.s3_key(self.room_arn, records[0].frame.sent_at, _digest(data))
        _write_whole(layout.local_path(root, {"s3": {"bucketName": self.bucket}}) / key, data)


@dataclass(frozen=True)
class CloudWatchSink:
    """A room's log stream in a log group: one record per line, appended."""

    log_group: str
    room_arn: str

    def write(self, root: Path, records: list[_Record]) -> None:
        path = layout.local_path(root, {"cloudWatchLogs": {"logGroupName": self.log_group}}, self.room_arn)
        _append_whole(path, "".join(r.line + "\n" for r in records).encode())


@dataclass(frozen=True)
class FirehoseSink:
    """A delivery stream (shared by every room that uses it): one object per batch, a line per record."""

    stream: str

    def write(self, root: Path, records: list[_Record]) -> None:
        data = "".join(r.line + "\n" for r in records).encode()
        key = layout.firehose_key(self.stream, records[0].frame.sent_at, _digest(data))
        _write_whole(layout.local_path(root, {"firehose": {"deliveryStreamName": self.stream}}) / key, data)


Sink = S3Sink | CloudWatchSink | FirehoseSink


def sinks_for(destination: dict[str, Any], room_arn: str) -> list[Sink]:
    """The sinks of one logging configuration's ``destinationConfiguration`` for one room."""
    found: list[Sink] = []
    if "s3" in destination:
        found.append(S3Sink(destination["s3"]["bucketName"], room_arn))
    if "cloudWatchLogs" in destination:
        found.append(CloudWatchSink(destination["cloudWatchLogs"]["logGroupName"], room_arn))
    if "firehose" in destination:
        found.append(FirehoseSink(destination["firehose"]["deliveryStreamName"]))
    return found


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_LENGTH]


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


# -- the listener and its writer thread ------------------------------------------------------
class _Flush:
    """Queued behind the records it must see written; ``done`` is set once they are."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class ChatLogs:
    """Listener for ``MessagingServer.listeners`` that writes chat logs under ``root``."""

    def __init__(self, state: State, root: Path | str, *, flush_interval: float = FLUSH_INTERVAL_SECONDS,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.state = state
        self.root = Path(root)
        self.flush_interval = flush_interval
        #: The loop that delivers frames; flush() from another thread queues its marker there.
        self.loop = loop
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sinks: dict[str, tuple[Sink, ...]] = {}
        self._generation = -1
        self._failing: set[Sink] = set()
        self._thread = threading.Thread(target=self._run, name="ivs-chat-logs", daemon=True)
        self._thread.start()

    # -- on the event loop: cheap ------------------------------------------------------------
    def __call__(self, room_arn: str, frame: Frame) -> None:
        if isinstance(frame, (ChatMessage, ChatEvent)):
            sinks = self.sinks(room_arn)
            if sinks:
                self._queue.put((sinks, frame))

    def sinks(self, room_arn: str) -> tuple[Sink, ...]:
        """Where a room's frames go now; cached until the state changes (any room or configuration)."""
        generation = self.state.generation
        if generation != self._generation:
            self._sinks.clear()
            self._generation = generation
        found = self._sinks.get(room_arn)
        if found is None:
            found = self._sinks[room_arn] = self._resolve(room_arn)
        return found

    def _resolve(self, room_arn: str) -> tuple[Sink, ...]:
        room = self.state.get(ROOM, room_arn)
        found: list[Sink] = []
        for config_arn in room.get("loggingConfigurationIdentifiers", []) if room else ():
            config = self.state.get(LOGGING_CONFIGURATION, config_arn)
            if config is not None and config["state"] == "ACTIVE":
                found.extend(sinks_for(config["destinationConfiguration"], room_arn))
        return tuple(found)

    # -- from any thread ---------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> None:
        """Write every record of the frames delivered so far, and return once they are on disk.

        Called from another thread, the marker is queued on the delivering loop: a frame a client
        has already received was delivered by then, so its record is ahead of the marker.
        """
        if not self._thread.is_alive():
            return
        marker = _Flush()
        if self.loop is not None and self.loop.is_running() and not _running_on(self.loop):
            self.loop.call_soon_threadsafe(self._queue.put, marker)
        else:
            self._queue.put(marker)
        if not marker.done.wait(timeout):
            raise TimeoutError(f"chat logs were not written within {timeout} s")

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending and stop the writer thread; safe to call twice."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        pending: dict[Sink, list[_Record]] = {}
        deadline: float | None = None
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if isinstance(item, tuple):
                sinks, frame = item
                try:
                    record = _Record(layout.encode_record(frame), frame)
                except Exception:  # the thread must outlive any one bad frame
                    log.exception("chat log record for %r could not be made", frame)
                    continue
                for sink in sinks:
                    pending.setdefault(sink, []).append(record)
                if deadline is None:
                    deadline = time.monotonic() + self.flush_interval
                if time.monotonic() < deadline:
                    continue
            self._write(pending)
            pending, deadline = {}, None
            if isinstance(item, _Flush):
                item.done.set()
            elif item is _STOP:
                return

    def _write(self, pending: dict[Sink, list[_Record]]) -> None:
        for sink, records in pending.items():
            try:
                sink.write(self.root, records)
            except Exception as error:  # one broken destination never stops the others (or chat)
                if sink not in self._failing:
                    log.error("chat log destination %s failed, dropping %d records (and later batches "
                              "until it recovers): %s", sink, len(records), error)
                    self._failing.add(sink)
            else:
                if sink in self._failing:
                    log.warning("chat log destination %s works again", sink)
                    self._failing.discard(sink)


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
