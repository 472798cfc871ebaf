"""Chat logging: every MESSAGE and EVENT of a room with ACTIVE logging configurations, delivered to
each configured destination.

Each frame becomes one record (``ivs_widgets.protocol.chat_logs`` owns the format and the names).
A destination is a local folder under the sandbox's data directory (:mod:`.sinks_local`), or, for
S3 and CloudWatch Logs when the sandbox has an endpoint for them, the API itself (:mod:`.sinks_aws`).

The messaging server calls :class:`ChatLogs` for each delivered frame on its event loop, so that
call only looks the room up in a cache and queues the frame; a writer thread batches records per
destination and writes a batch once its first record has waited the destination's delay (about a
second by default; the documented AWS delays on request), on :meth:`ChatLogs.flush` and on close.
A destination that fails is reported (one line per kind of problem per interval) and its batch
dropped; chat and the other destinations carry on.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from ivs_widgets.protocol import chat_logs as layout
from ivs_widgets.protocol.frames import ChatEvent, ChatMessage, Frame
from ivs_widgets.sandbox.core.descriptors import ProblemLog
from ivs_widgets.sandbox.core.state import LOGGING_CONFIGURATION, ROOM, State
from ivs_widgets.sandbox.logs.batches import Record, Sink
from ivs_widgets.sandbox.logs.sinks_aws import CloudWatchLogGroup, DestinationApis, S3Bucket
from ivs_widgets.sandbox.logs.sinks_local import CloudWatchFile, FirehoseFolder, S3Folder

log = logging.getLogger("ivs_widgets.sandbox.chat_logs")

#: How long records wait before they are written, by default: soon enough for a notebook to read them back.
FLUSH_INTERVAL_SECONDS = 1.0
#: The average delays from a message to its record in each destination that AWS documents
#: (https://docs.aws.amazon.com/ivs/latest/ChatUserGuide/chat-logging.html): S3 5 minutes,
#: CloudWatch Logs and Firehose 10 seconds. ``SandboxConfig.log_delivery_scale`` applies them.
DOCUMENTED_DELAYS_SECONDS = {"s3": 300.0, "cloudWatchLogs": 10.0, "firehose": 10.0}
#: Seconds between two report lines of the same kind of delivery problem.
PROBLEM_INTERVAL_SECONDS = 30.0


def delivery_delays(scale: float | None) -> dict[str, float]:
    """Seconds a record waits per destination kind: the documented AWS delays times ``scale`` (1.0:
    as on AWS, 0.01: a test's hundredfold speed-up), or the sandbox's quick flush when None."""
    if scale is None:
        return dict.fromkeys(DOCUMENTED_DELAYS_SECONDS, FLUSH_INTERVAL_SECONDS)
    if not scale > 0:
        raise ValueError(f"log_delivery_scale must be above 0 (1.0: AWS's delays), not {scale!r}")
    return {kind: delay * scale for kind, delay in DOCUMENTED_DELAYS_SECONDS.items()}


class _Flush:
    """Queued behind the records it must see written; ``done`` is set once they are."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class ChatLogs:
    """Listener for ``MessagingServer.listeners`` that delivers chat logs: to folders under ``root``,
    or to the APIs of ``apis`` for the destination kinds it has an endpoint for."""

    def __init__(self, state: State, root: Path | str, *, apis: DestinationApis | None = None,
                 delays: dict[str, float] | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.state = state
        self.root = Path(root)
        self.apis = apis or DestinationApis("")
        self.delays = delays or delivery_delays(None)
        #: The loop that delivers frames; flush() from another thread queues its marker there.
        self.loop = loop
        self.problems = ProblemLog(PROBLEM_INTERVAL_SECONDS, log)
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
                found.extend(self.sinks_for(config["destinationConfiguration"], room_arn))
        return tuple(found)

    def sinks_for(self, destination: dict[str, Any], room_arn: str) -> list[Sink]:
        """The sinks of one logging configuration's ``destinationConfiguration`` for one room: the
        API where the sandbox has an endpoint for its kind, else the local folder."""
        found: list[Sink] = []
        if "s3" in destination:
            bucket = destination["s3"]["bucketName"]
            found.append(S3Bucket(self.apis, bucket, room_arn) if "s3" in self.apis.endpoints
                         else S3Folder(self.root, bucket, room_arn))
        if "cloudWatchLogs" in destination:
            group = destination["cloudWatchLogs"]["logGroupName"]
            found.append(CloudWatchLogGroup(self.apis, group, room_arn) if "cloudWatchLogs" in self.apis.endpoints
                         else CloudWatchFile(self.root, group, room_arn))
        if "firehose" in destination:
            found.append(FirehoseFolder(self.root, destination["firehose"]["deliveryStreamName"]))
        return found

    # -- from any thread ---------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> None:
        """Deliver every record of the frames delivered so far, whatever the delays, and return once
        they are stored.

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

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is pending and stop the writer thread; safe to call twice."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.apis.warm_up()  # boto3's import and clients, here rather than on the loop's first check
        except Exception as error:
            self.problems.report("clients", f"chat log destination APIs unusable: {error}")
        pending: dict[Sink, list[Record]] = {}
        deadlines: dict[Sink, float] = {}
        while True:
            wait = None if not deadlines else max(0.0, min(deadlines.values()) - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if isinstance(item, tuple):
                self._add(item, pending, deadlines)
            due = list(pending) if item is _STOP or isinstance(item, _Flush) else \
                [sink for sink, deadline in deadlines.items() if deadline <= time.monotonic()]
            for sink in due:
                self._write(sink, pending.pop(sink))
                del deadlines[sink]
            if isinstance(item, _Flush):
                item.done.set()
            elif item is _STOP:
                return

    def _add(self, item: tuple[tuple[Sink, ...], ChatMessage | ChatEvent], pending: dict[Sink, list[Record]],
             deadlines: dict[Sink, float]) -> None:
        sinks, frame = item
        try:
            record = Record(layout.encode_record(frame), frame)
        except Exception:  # the thread must outlive any one bad frame
            log.exception("chat log record for %r could not be made", frame)
            return
        for sink in sinks:
            if sink not in pending:
                pending[sink] = []
                deadlines[sink] = time.monotonic() + self.delays[sink.kind]
            pending[sink].append(record)

    def _write(self, sink: Sink, records: list[Record]) -> None:
        try:
            sink.write(records)
        except Exception as error:  # one broken destination never stops the others (or chat)
            self._failing.add(sink)
            self.problems.report(f"{sink}: {type(error).__name__}",
                                 f"chat log destination {sink} failed, records dropped: {error}")
        else:
            if sink in self._failing:
                log.warning("chat log destination %s works again", sink)
                self._failing.discard(sink)


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
