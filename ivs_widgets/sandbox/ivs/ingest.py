"""The RTMP ingest: encoders publish to ``rtmp://<host>:<port>/app/<stream key>`` as they would to
IVS's ``rtmps://<ingestEndpoint>:443/app/``, and their channel goes live.

One asyncio server on the sandbox's loop; one task a connection. ``publish`` checks the key with
:meth:`LiveStreams.stream_started` (a wrong key gets an ``onStatus`` error and the connection is
closed); the stream's audio, video and metadata go to the stream's :class:`HlsPackager` as FLV, and
what they say of themselves becomes the session's ingest configuration. The stream ends when the
encoder says so (``FCUnpublish``, ``deleteStream``), closes its socket, goes silent for
:data:`IDLE_SECONDS`, or breaks the protocol, and on StopStream (:meth:`RtmpIngest.drop`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from ivs_widgets.protocol.errors import IvsWidgetsError
from ivs_widgets.sandbox.ivs import flv, rtmp
from ivs_widgets.sandbox.ivs.packager import HlsPackager
from ivs_widgets.sandbox.ivs.streams import LiveStream, LiveStreams, StreamRefused

log = logging.getLogger("ivs_widgets.sandbox.ivs.ingest")

#: The application every stream key is published under, as on IVS.
APP = "app"
#: A connection that sends nothing for this long (handshake included) is closed and a stream on it ends: an
#: encoder that vanished without closing its socket leaves GetStream LIVE no longer than this.
IDLE_SECONDS = 5.0
_STREAM_ID = 1  # the one message stream createStream hands out
_END_COMMANDS = {"FCUnpublish", "deleteStream", "closeStream"}


class _EncoderLeft(Exception):
    """The encoder ended its stream, or the connection must close; not an error."""


class RtmpIngest:
    """``await start(sockets)``; ``packager(channel_arn)`` is what the playback route serves."""

    def __init__(self, streams: LiveStreams, *, segment_seconds: int = 1) -> None:
        self.streams = streams
        self.segment_seconds = segment_seconds
        self._servers: list[asyncio.Server] = []
        self._publishers: dict[str, _Publisher] = {}  # by stream id, while live
        self._connections: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        #: Every packager not yet stopped (a connection cancelled while it stopped its own leaves one).
        self._packagers: set[HlsPackager] = set()

    async def start(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._servers.append(await asyncio.start_server(self._connected, sock=sock))

    async def stop(self) -> None:
        """Close the listeners and every connection; each live stream ends and its packager stops."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await asyncio.gather(*(packager.stop() for packager in self._packagers), return_exceptions=True)
        self._packagers.clear()
        self._servers.clear()

    def packager(self, channel_arn: str) -> HlsPackager | None:
        """The live packager of a channel, or None while it is offline."""
        stream = self.streams.live(channel_arn)
        publisher = self._publishers.get(stream.stream_id) if stream else None
        return publisher.packager if publisher else None

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait until ``condition()`` holds, checked whenever a stream starts, lists a segment or ends
        (TimeoutError after ``timeout`` s): how tests and ``go_live`` wait, without polling."""
        async with asyncio.timeout(timeout):
            while not condition():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

    async def wait_for_segments(self, channel_arn: str, after: int = -1, timeout: float = 30) -> int:
        """Wait until the channel's live playlist lists a segment numbered above ``after``; its newest
        segment's number."""
        def newest() -> int:
            packager = self.packager(channel_arn)
            return packager.segments[-1].sequence if packager is not None and packager.segments else -1

        await self.wait_until(lambda: newest() > after, timeout)
        return newest()

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- what the control plane calls (on the sandbox's loop) ---------------------------------
    def drop(self, stream: LiveStream) -> None:
        """StopStream: disconnect the stream's encoder now (its connection task then cleans up)."""
        publisher = self._publishers.pop(stream.stream_id, None)
        if publisher is not None:
            publisher.writer.transport.abort()
            self._changed()

    def put_metadata(self, stream: LiveStream, metadata: str) -> None:
        """PutMetadata: the packager puts it at the live point."""
        publisher = self._publishers.get(stream.stream_id)
        if publisher is None:
            return
        if publisher.packager is None:  # live, no frame yet: it goes at the stream's start
            publisher.early_metadata.append(metadata)
        else:
            publisher.packager.put_metadata(metadata)

    # -- connections -------------------------------------------------------------------------
    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        publisher = _Publisher(self, reader, writer)
        try:
            await publisher.run()
        except (_EncoderLeft, ConnectionError, asyncio.IncompleteReadError):
            pass
        except TimeoutError:
            log.info("closed %s: nothing received for %.0f s", publisher.peer, IDLE_SECONDS)
        except IvsWidgetsError as error:  # the protocol broken: say why once, close
            log.warning("closed %s: %s", publisher.peer, error.message)
        except Exception:  # a bug of ours: this connection ends, the sandbox and other encoders go on
            log.exception("closed %s after an unexpected error", publisher.peer)
        except asyncio.CancelledError:  # stop(): end normally (asyncio's server reports a cancelled handler)
            pass
        finally:
            self._connections.discard(task)
            writer.transport.abort()
            await publisher.finish()


class _Publisher:
    """One encoder connection, from handshake to the end of its stream."""

    def __init__(self, ingest: RtmpIngest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.ingest, self.reader, self.writer = ingest, reader, writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "an encoder"
        self.chunks = rtmp.ChunkReader()
        self.stream: LiveStream | None = None
        self.packager: HlsPackager | None = None
        self.metadata: dict[str, Any] = {}
        self._metadata_tag: bytes | None = None
        #: PutMetadata calls before the first frame, for the packager once it starts.
        self.early_metadata: list[str] = []
        self._video_config: bytes | None = None
        self._audio_config: bytes | None = None
        self._received = self._acknowledged = 0
        self._window = 0

    async def run(self) -> None:
        c0c1 = await asyncio.wait_for(self.reader.readexactly(1 + rtmp.HANDSHAKE_SIZE), IDLE_SECONDS)
        self.writer.write(rtmp.handshake_reply(c0c1))
        await asyncio.wait_for(self.reader.readexactly(rtmp.HANDSHAKE_SIZE), IDLE_SECONDS)  # C2
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), IDLE_SECONDS)
            if not data:
                return
            self._acknowledge(len(data))
            for message in self.chunks.feed(data):
                await self._handle(message)

    def _acknowledge(self, size: int) -> None:
        """Acknowledge received bytes once per the window the encoder announced (RTMP 1.0 §5.4.3)."""
        self._received += size
        if self._window and self._received - self._acknowledged >= self._window:
            self._acknowledged = self._received
            self.writer.write(rtmp.control(rtmp.ACKNOWLEDGEMENT, self._received & 0xFFFFFFFF))

    async def _handle(self, message: rtmp.Message) -> None:
        if message.type_id == rtmp.COMMAND_AMF0:
            await self._command(rtmp.amf0_decode(message.payload))
        elif message.type_id == rtmp.WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._window = int.from_bytes(message.payload[:4], "big")
        elif message.type_id in flv.TAG_TYPES and self.stream is not None and message.stream_id == _STREAM_ID:
            await self._media(message)

    async def _command(self, values: list[Any]) -> None:
        if len(values) < 2 or not isinstance(values[0], str):
            raise rtmp.RtmpError("a command message without a command name")
        name, args = values[0], values[3:]
        transaction = values[1] if isinstance(values[1], float) else 0  # echoed in the answer: a number
        if name == "connect":
            info = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            app = str(info.get("app", "")).strip("/")
            if app != APP:
                self.writer.write(rtmp.command("_error", transaction, None, rtmp.status(
                    "NetConnection.Connect.Rejected", f"Publish to /{APP}/<stream key>, not /{app}", level="error")))
                raise rtmp.RtmpError(f"connect to application {app!r}, not {APP!r}")
            self.writer.write(rtmp.control(rtmp.WINDOW_ACK_SIZE, 5_000_000) + rtmp.control(
                rtmp.SET_PEER_BANDWIDTH, 5_000_000, 2) + rtmp.command(
                "_result", transaction, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                {**rtmp.status("NetConnection.Connect.Success", "Connection succeeded."), "objectEncoding": 0}))
        elif name == "createStream":
            self.writer.write(rtmp.command("_result", transaction, None, _STREAM_ID))
        elif name == "publish":
            await self._publish(str(args[0]) if args else "")
        elif name in _END_COMMANDS and self.stream is not None:
            raise _EncoderLeft
        await self.writer.drain()

    async def _publish(self, name: str) -> None:
        key = name.split("?", 1)[0]  # OBS and others may add query parameters
        if self.stream is not None:
            raise rtmp.RtmpError("a second publish on one connection")
        try:
            self.stream = self.ingest.streams.stream_started(key)
        except StreamRefused as refused:
            self.writer.write(rtmp.command("onStatus", 0, None, rtmp.status(
                "NetStream.Publish.BadName", f"{refused.code}: {refused.message}", level="error"),
                stream_id=_STREAM_ID))
            await self.writer.drain()
            log.warning("refused an encoder from %s: %s (%s)", self.peer, refused.code, refused.message)
            raise _EncoderLeft from None
        self.ingest._publishers[self.stream.stream_id] = self
        self.writer.write(rtmp.stream_begin(_STREAM_ID) + rtmp.command("onStatus", 0, None, rtmp.status(
            "NetStream.Publish.Start", f"{key[:12]}… is now published."), stream_id=_STREAM_ID))
        log.info("encoder %s live as %s", self.peer, self.stream.stream_id)
        self.ingest._changed()

    async def _media(self, message: rtmp.Message) -> None:
        assert self.stream is not None
        body = message.payload
        if message.type_id == rtmp.DATA_AMF0:
            metadata = rtmp.metadata_object(rtmp.amf0_decode(body))
            if metadata is None:
                return
            self.metadata = dict(metadata)
            self._metadata_tag = flv.tag(rtmp.DATA_AMF0, 0, rtmp.amf0_encode("onMetaData", metadata))
            self._configure()
            return
        if message.type_id == rtmp.VIDEO and flv.is_video_config(body):
            self._video_config = body[5:]
            self._configure()
        elif message.type_id == rtmp.AUDIO and flv.is_audio_config(body):
            self._audio_config = body[2:]
            self._configure()
        if self.packager is None:
            await self._start_packager()
        assert self.packager is not None
        self.packager.media_arrived(message.timestamp)
        await self.packager.write(flv.tag(message.type_id, message.timestamp, body))

    async def _start_packager(self) -> None:
        """On the first frame: what onMetaData announced decides the tracks and what is copied."""
        assert self.stream is not None
        audio_codec, video_codec = self.metadata.get("audiocodecid"), self.metadata.get("videocodecid")
        self.packager = HlsPackager(self.stream, segment_seconds=self.ingest.segment_seconds,
                                    copy_video=video_codec in (None, flv.AVC, "avc1"),
                                    copy_audio=audio_codec in (None, flv.AAC, "mp4a"),
                                    on_segment=self.ingest._changed)
        self.ingest._packagers.add(self.packager)
        await self.packager.start(audio=not self.metadata or "audiocodecid" in self.metadata)
        if self._metadata_tag is not None:
            await self.packager.write(self._metadata_tag)
        for metadata in self.early_metadata:
            self.packager.put_metadata(metadata)

    def _configure(self) -> None:
        """GetStreamSession's ingest configuration, from what the encoder has said of its stream so far."""
        assert self.stream is not None
        configuration = {}
        if self._video_config is not None or "videocodecid" in self.metadata:
            configuration["video"] = flv.video_configuration(self.metadata, self._video_config)
        if self._audio_config is not None or "audiocodecid" in self.metadata:
            configuration["audio"] = flv.audio_configuration(self.metadata, self._audio_config)
        self.ingest.streams.configured(self.stream, configuration)

    async def finish(self) -> None:
        """The connection is gone: the stream (if any) ends and its packager stops."""
        if self.stream is not None:
            self.ingest._publishers.pop(self.stream.stream_id, None)
            self.ingest.streams.stream_ended(self.stream.channel_arn, self.stream.stream_id)
            self.ingest._changed()
        if self.packager is not None:
            await self.packager.stop()
            self.ingest._packagers.discard(self.packager)
