"""A live stream's HLS: the ingested FLV piped into ffmpeg, its CMAF segments published with their
timed metadata, and the sliding-window playlist players fetch at the channel's playbackUrl.

ffmpeg (imageio-ffmpeg's) copies H.264 and AAC as they come (anything else is encoded to them) into
fragmented MP4 segments of about ``segment_seconds`` (each starts at an encoder keyframe) in a
temporary folder. When its log says it wrote segment N (the segment's file, then its own playlist),
the packager reads it, puts the ``emsg`` boxes of the PutMetadata calls made since the last segment
in front of its first ``moof``, keeps it in memory and only then lists it in the playlist it serves,
with its EXT-X-PROGRAM-DATE-TIME from the ingest's wall clock. ffmpeg's own playlist is not served.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivs_widgets.protocol import formats
from ivs_widgets.sandbox.ivs import fmp4, timed_metadata
from ivs_widgets.sandbox.ivs.flv import HEADER
from ivs_widgets.sandbox.ivs.streams import LiveStream
from ivs_widgets.test_card import die_with_parent

log = logging.getLogger("ivs_widgets.sandbox.ivs.packager")

PLAYLIST = "live.m3u8"
INIT = "init.mp4"
SEGMENT_NAME = "seg{:05d}.m4s"
#: ffmpeg's hls muxer (fmp4) opens a segment's file once the segment is complete, writes and closes it,
#: then rewrites its playlist: the playlist line says the segment before it is all on disk.
_SEGMENT_OPENED = re.compile(r"Opening '[^']*seg(\d+)\.m4s' for writing")
_PLAYLIST_OPENED = re.compile(r"Opening '[^']*ffmpeg\.m3u8\.tmp' for writing")
#: The timescale of emsg presentation times: RTMP's and FLV's milliseconds.
METADATA_TIMESCALE = 1000


@dataclass(frozen=True)
class Segment:
    sequence: int
    duration: float
    #: The ingest's wall clock (seconds since the epoch) when the segment's first frame arrived.
    program_date_time: float
    data: bytes


class HlsPackager:
    """One live stream's packager: ``await start()``, ``await write(flv_bytes)``, ``await stop()``."""

    def __init__(self, stream: LiveStream, *, segment_seconds: int = 1, list_size: int = 6,
                 copy_video: bool = True, copy_audio: bool = True,
                 on_segment: Callable[[], None] = lambda: None) -> None:
        self.stream = stream
        self.segment_seconds = segment_seconds
        self.list_size = list_size
        self.copy_video, self.copy_audio = copy_video, copy_audio
        #: Told after each segment is listed (on the loop): waiters for a playable stream wake there.
        self.on_segment = on_segment
        self.folder: Path | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.segments: collections.deque[Segment] = collections.deque(maxlen=list_size)
        self.init: bytes | None = None
        #: Newest media timestamp the ingest has handed over (ms): the live point PutMetadata inserts at.
        self.live_point_ms = 0
        self._wall_at_zero: float | None = None
        self._pending: list[bytes] = []
        self._event_id = 0
        self._timescales: dict[int, int] = {}
        self._target = segment_seconds
        self._log: collections.deque[str] = collections.deque(maxlen=20)
        self._reader: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, audio: bool = True) -> None:
        """Spawn ffmpeg and write the FLV header (``audio``: the stream has an audio track)."""
        self.folder = Path(tempfile.mkdtemp(prefix="ivs-packager-"))
        self.process = await asyncio.create_subprocess_exec(
            *self._command(audio), cwd=self.folder, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, preexec_fn=die_with_parent())
        self._reader = asyncio.create_task(self._read_log(), name=f"packager {self.stream.stream_id}")
        await self.write(HEADER[:4] + bytes([0x05 if audio else 0x01]) + HEADER[5:])

    async def write(self, data: bytes) -> None:
        """FLV bytes for ffmpeg; waits while ffmpeg is behind (the encoder's TCP window then fills)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    def media_arrived(self, timestamp_ms: int) -> None:
        """The ingest took a frame stamped ``timestamp_ms``: the live point moves, and so may the map from
        the media timeline to the ingest's wall clock. That map is the earliest arrival relative to the
        stamps: encoders send a burst at start (ffmpeg ``-re``: half a second), then in real time."""
        self.live_point_ms = max(self.live_point_ms, timestamp_ms)
        wall_at_zero = time.time() - timestamp_ms / 1000
        if self._wall_at_zero is None or wall_at_zero < self._wall_at_zero:
            self._wall_at_zero = wall_at_zero

    async def stop(self) -> None:
        """End ffmpeg (its input first, then a kill if it lingers) and remove the folder; safe twice."""
        process = self.process
        if process is not None:  # cleared only once reaped: a stop cancelled midway can be run again
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
            self.process = None
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # -- timed metadata ----------------------------------------------------------------------
    def put_metadata(self, text: str) -> None:
        """PutMetadata: an ID3 cue at the live point, in front of the next segment published."""
        self._event_id += 1
        tag = timed_metadata.id3_tag(text)
        self._pending.append(timed_metadata.emsg_box(tag, presentation_time=self.live_point_ms,
                                                     timescale=METADATA_TIMESCALE, event_id=self._event_id))

    # -- what players fetch ------------------------------------------------------------------
    def playlist(self) -> str | None:
        """The live media playlist, or None before the first segment."""
        if not self.segments:
            return None
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{self._target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].sequence}", "#EXT-X-INDEPENDENT-SEGMENTS",
                 f'#EXT-X-MAP:URI="{self.stream.stream_id}/{INIT}"']
        for segment in self.segments:
            stamp = formats.iso_millis(formats.from_epoch(segment.program_date_time))
            lines += [f"#EXT-X-PROGRAM-DATE-TIME:{stamp}", f"#EXTINF:{segment.duration:.3f},",
                      f"{self.stream.stream_id}/{SEGMENT_NAME.format(segment.sequence)}"]
        return "\n".join(lines) + "\n"

    def file(self, name: str) -> bytes | None:
        """The init segment or a media segment still in the window, by name; None otherwise."""
        if name == INIT:
            return self.init
        return next((s.data for s in self.segments if SEGMENT_NAME.format(s.sequence) == name), None)

    # -- ffmpeg ------------------------------------------------------------------------------
    def _command(self, audio: bool) -> list[str]:
        import imageio_ffmpeg  # imported here: only live video needs the ffmpeg wheel

        video = ["-c:v", "copy"] if self.copy_video else [
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-force_key_frames",
            f"expr:gte(t,n_forced*{self.segment_seconds})"]
        sound = (["-c:a", "copy"] if self.copy_audio else ["-c:a", "aac"]) if audio else []
        return [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            # The codecs' headers come first: half a second of probing finds both tracks (the default, 5 s,
            # would hold the first segment back).
            "-analyzeduration", "500000", "-f", "flv", "-i", "pipe:0", *video, *sound, "-copyts",
            "-f", "hls", "-hls_time", str(self.segment_seconds), "-hls_list_size", str(self.list_size),
            "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", INIT,
            "-hls_segment_options", "movflags=+skip_sidx",  # an emsg before moof leaves no offset to fix
            "-hls_flags", "delete_segments+independent_segments",
            "-hls_segment_filename", SEGMENT_NAME.replace("{:05d}", "%05d"), "ffmpeg.m3u8",
        ]

    async def _read_log(self) -> None:
        process = self.process
        assert process is not None and process.stderr is not None
        stderr = process.stderr
        written: int | None = None
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._log.append(text)
            opened = _SEGMENT_OPENED.search(text)
            if opened:
                written = int(opened[1])
            elif written is not None and _PLAYLIST_OPENED.search(text):
                self._publish(written)
                written = None
        if await process.wait() != 0:  # 0 after its input closed: the stream ended
            log.warning("the packager of stream %s stopped:\n%s", self.stream.stream_id, "\n".join(self._log))

    def _publish(self, sequence: int) -> None:
        """Segment ``sequence`` is complete: add the pending emsg boxes, then list it."""
        assert self.folder is not None
        try:
            if self.init is None:
                self.init = (self.folder / INIT).read_bytes()
                self._timescales = fmp4.track_timescales(self.init)
            data = (self.folder / SEGMENT_NAME.format(sequence)).read_bytes()
            fragment = fmp4.fragments(data)[0]
        except (OSError, IndexError, StopIteration) as exc:
            log.warning("stream %s: segment %d unreadable (%s); skipped", self.stream.stream_id, sequence, exc)
            return
        scale = self._timescales.get(fragment.track_id, METADATA_TIMESCALE)
        if self._pending:
            at = fmp4.first_moof(data)
            data = data[:at] + b"".join(self._pending) + data[at:]
            self._pending = []
        start = fragment.start / scale
        duration = fragment.duration / scale
        self._target = max(self._target, math.ceil(duration - 0.001))
        wall = self._wall_at_zero if self._wall_at_zero is not None else time.time() - start - duration
        self.segments.append(Segment(sequence, duration, wall + start, data))
        self.on_segment()
