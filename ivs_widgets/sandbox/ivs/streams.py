"""Live streams of channels: the state machine the ingest drives and the ``ivs`` API reads.

A channel is offline until the ingest (the sandbox's RTMP server) calls :meth:`LiveStreams.stream_started`
with a stream key: that key's channel goes LIVE with a new stream id (``st-…``) and a stream session.
:meth:`LiveStreams.stream_ended` (the encoder went away) or StopStream (:meth:`LiveStreams.stop`, which
first tells the ingest to drop the encoder) ends it: GetStream answers ChannelNotBroadcasting again,
and the session keeps its start and end, the channel as it was, the ingest configuration and its
events for GetStreamSession and ListStreamSessions. PutMetadata reaches the packager through
:attr:`LiveStreams.metadata_listeners`.

Sessions are kept in the state, so ``--state`` keeps them; a live stream is not (its encoder's
connection does not survive a restart either), so a restart ends every session still open.
Thread-safe: the ingest calls in from its own thread, the API from the sandbox's loop.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ivs_widgets.protocol import formats
from ivs_widgets.protocol.errors import IvsWidgetsError
from ivs_widgets.sandbox.core import validation
from ivs_widgets.sandbox.core.state import CHANNEL, STREAM_KEY, STREAM_SESSION, Resource, State
from ivs_widgets.sandbox.ivs import errors

log = logging.getLogger("ivs_widgets.sandbox.ivs")

#: The events a session records (EventBridge's "IVS Stream State Change" names), newest first.
EVENT_TYPE = "IVS Stream State Change"
SESSION_CREATED, STREAM_START, STREAM_END, SESSION_ENDED = "Session Created", "Stream Start", "Stream End", "Session Ended"


@dataclass(frozen=True)
class LiveStream:
    """A channel's current stream, as the ingest and the packager know it."""

    channel_arn: str
    stream_id: str
    #: When it went live, as the API answers it (ISO 8601, UTC).
    start_time: str
    #: When it went live in nanoseconds since the epoch (orders ListStreams, newest first).
    started_ns: int
    #: What the encoder sends, in the API's IngestConfiguration shape (``{"video": {…}, "audio": {…}}``).
    ingest_configuration: dict[str, Any] | None


#: Told when StopStream ends a live stream, on the sandbox's loop: the ingest disconnects that stream's
#: encoder (hand the work to the ingest's own loop, do not block). If it raises, StopStream answers
#: StreamUnavailable and the stream stays live.
StopListener = Callable[[LiveStream], None]
#: Told of every PutMetadata the API accepted (at most 5 a second per channel), on the sandbox's loop:
#: the packager inserts the metadata as ID3 timed metadata at the live point.
MetadataListener = Callable[[LiveStream, str], None]


class StreamRefused(IvsWidgetsError):
    """The ingest must refuse this stream: ``code`` is ``INVALID_STREAM_KEY`` (no channel has the key) or
    ``REUSE_OF_STREAM_KEY`` (its channel is already live), IVS's own names for the two refusals."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class LiveStreams:
    def __init__(self, state: State) -> None:
        self.state = state
        self.stop_listeners: list[StopListener] = []
        self.metadata_listeners: list[MetadataListener] = []
        self._live: dict[str, LiveStream] = {}
        self._lock = threading.RLock()
        for session in state.all(STREAM_SESSION):
            if "endTime" not in session:
                self._end(session)

    # -- what the ingest calls ---------------------------------------------------------------
    def stream_started(self, stream_key: str, ingest_configuration: dict[str, Any] | None = None) -> LiveStream:
        """An encoder connected with ``stream_key``: its channel goes live. ``ingest_configuration``
        (codec, resolution, bitrate … as the API's IngestConfiguration shape has them) is what
        GetStreamSession reports. Raises :class:`StreamRefused` for a key no channel has, or a live channel."""
        if ingest_configuration is not None:
            _validate(ingest_configuration)
        with self._lock:
            given = stream_key.encode()  # bytes: compare_digest takes no non-ASCII str, and a key may be anything
            key = next((k for k in self.state.all(STREAM_KEY) if hmac.compare_digest(k["value"].encode(), given)),
                       None)
            channel = self.state.get(CHANNEL, key["channelArn"]) if key is not None else None
            if channel is None:
                raise StreamRefused("INVALID_STREAM_KEY", "No channel has this stream key")
            if channel["arn"] in self._live:
                raise StreamRefused("REUSE_OF_STREAM_KEY", f"Channel {channel['arn']} is already live")
            started = time.time_ns()
            stamp = formats.iso_millis(formats.from_epoch(started / 1e9))
            stream = LiveStream(channel["arn"], formats.stream_id(_stream_id_length()), stamp, started,
                                ingest_configuration)
            session: Resource = {
                "arn": stream.stream_id, "streamId": stream.stream_id, "channelArn": channel["arn"],
                "startTime": stamp, "_channel": channel,
                "truncatedEvents": [_event(STREAM_START, stamp), _event(SESSION_CREATED, stamp)],
            }
            if ingest_configuration is not None:
                session["ingestConfiguration"] = ingest_configuration
            self.state.put(STREAM_SESSION, session)
            self._live[channel["arn"]] = stream
        log.info("stream %s live on %s", stream.stream_id, stream.channel_arn)
        return stream

    def configured(self, stream: LiveStream, ingest_configuration: dict[str, Any]) -> None:
        """What the encoder says of its stream once it has said it (onMetaData and the codecs' headers
        follow ``publish``): GetStreamSession shows it. A stream no longer live is left as it ended."""
        _validate(ingest_configuration)
        with self._lock:
            live = self._live.get(stream.channel_arn)
            if live is None or live.stream_id != stream.stream_id:
                return
            self._live[stream.channel_arn] = replace(live, ingest_configuration=ingest_configuration)
            session = self.state.get(STREAM_SESSION, stream.stream_id)
            if session is not None:
                session["ingestConfiguration"] = ingest_configuration
                self.state.put(STREAM_SESSION, session, updated=False)

    def stream_ended(self, channel_arn: str, stream_id: str | None = None) -> None:
        """The encoder went away: the channel is offline and its session ends. With ``stream_id``, only
        if that stream is still the live one (a late report of an old connection must not end its
        successor); a channel already offline is left as it is."""
        with self._lock:
            stream = self._live.get(channel_arn)
            if stream is None or (stream_id is not None and stream.stream_id != stream_id):
                return
            del self._live[channel_arn]
            session = self.state.get(STREAM_SESSION, stream.stream_id)
            if session is not None:
                self._end(session)
        log.info("stream %s on %s ended", stream.stream_id, channel_arn)

    def live(self, channel_arn: str) -> LiveStream | None:
        """The channel's current stream, or None while it is offline."""
        with self._lock:
            return self._live.get(channel_arn)

    def all_live(self) -> list[LiveStream]:
        """Every live stream, newest first."""
        with self._lock:
            return sorted(self._live.values(), key=lambda s: (s.started_ns, s.channel_arn), reverse=True)

    # -- what the API does -------------------------------------------------------------------
    def stop(self, channel_arn: str) -> None:
        """StopStream: the ingest drops the encoder (``stop_listeners``), then the stream ends."""
        stream = self.require_live(channel_arn)
        for listener in self.stop_listeners:
            try:
                listener(stream)
            except Exception:
                log.exception("the ingest could not disconnect stream %s", stream.stream_id)
                raise errors.error("StreamUnavailable", "The stream is temporarily unavailable: the encoder "
                                   "could not be disconnected; try again") from None
        self.stream_ended(channel_arn, stream.stream_id)

    def insert_metadata(self, channel_arn: str, metadata: str) -> None:
        """PutMetadata, once accepted: the packager puts it at the live point (``metadata_listeners``)."""
        stream = self.require_live(channel_arn)
        for listener in self.metadata_listeners:
            listener(stream, metadata)

    def require_live(self, channel_arn: str) -> LiveStream:
        stream = self.live(channel_arn)
        if stream is None:
            raise errors.not_broadcasting(channel_arn)
        return stream

    def sessions(self, channel_arn: str) -> list[Resource]:
        """The channel's stream sessions, live and ended, newest first."""
        return [s for s in self.state.all(STREAM_SESSION) if s["channelArn"] == channel_arn]

    def forget(self, channel_arn: str) -> None:
        """A deleted channel's sessions go with it."""
        for session in self.sessions(channel_arn):
            self.state.remove(STREAM_SESSION, session["arn"])

    def _end(self, session: Resource) -> None:
        stamp = formats.iso_millis(formats.now())
        session["endTime"] = stamp
        session["truncatedEvents"] = [_event(SESSION_ENDED, stamp), _event(STREAM_END, stamp),
                                      *session["truncatedEvents"]]
        self.state.put(STREAM_SESSION, session, updated=False)


def _validate(ingest_configuration: dict[str, Any]) -> None:
    validation.validate(validation.service_model("ivs").shape_for("IngestConfiguration"), ingest_configuration,
                        "ingestConfiguration")


def _event(name: str, stamp: str) -> dict[str, str]:
    return {"name": name, "type": EVENT_TYPE, "eventTime": stamp}


def _stream_id_length() -> int:
    """The model fixes it (26: ``st-`` and 23 characters)."""
    return int(validation.service_model("ivs").shape_for("StreamId").metadata["max"])
