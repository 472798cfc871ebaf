"""A live HLS test stream on loopback, so the player panel has something to play without AWS.

ffmpeg comes from the imageio-ffmpeg wheel (it carries libx264, aac and the hls muxer), so nothing
is installed system-wide. It draws a test card with a running wall clock (the clock shows how far
behind live a player is) and a sine tone, and writes a sliding-window live playlist into a
temporary folder. A small tornado app on its own port serves that folder with the MIME types and
the CORS header a browser needs to fetch it from the JupyterLab origin.
"""

from __future__ import annotations

import atexit
import collections
import logging
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from ivs_widgets.loop_thread import LoopThread
from ivs_widgets.sandbox.core.config import host_for_url
from ivs_widgets.sandbox.stream.routes import application
from ivs_widgets.test_card import StreamError as StreamError
from ivs_widgets.test_card import clock_and_tone, die_with_parent

log = logging.getLogger("ivs_widgets.sandbox.stream")

PLAYLIST = "live.m3u8"
#: Segments written at once on start (then real time), so a player has a buffer from the first fetch.
STARTUP_SEGMENTS = 3
SEGMENT_PREFIX = "seg"
SEGMENT_NAME = f"{SEGMENT_PREFIX}%05d.ts"
#: The hls muxer logs this as it flushes segment N, just after the playlist listing N-1 is in place.
_SEGMENT_FLUSHED = re.compile(rf"Opening '{SEGMENT_PREFIX}(\d+)\.ts' for writing")


class HlsTestStream:
    """``with HlsTestStream() as s: player.url = s.playback_url`` — a live stream until ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, width: int = 320, height: int = 180,
                 fps: int = 15, segment_seconds: int = 1, list_size: int = 6, tone_hz: int = 440) -> None:
        self.host = host
        self.port = port
        self.width, self.height, self.fps = width, height, fps
        self.segment_seconds = segment_seconds
        self.list_size = list_size
        self.tone_hz = tone_hz
        self.folder: Path | None = None
        self.process: subprocess.Popen[str] | None = None
        self._ffmpeg_log: collections.deque[str] = collections.deque(maxlen=40)
        self._segments_listed = 0
        self._progress = threading.Condition()
        self._reader: threading.Thread | None = None
        self._http = LoopThread("ivs-hls-http")
        self._server: tornado.httpserver.HTTPServer | None = None

    @property
    def playback_url(self) -> str:
        return self.playback_url_for(self.host)

    def playback_url_for(self, host: str) -> str:
        """The playlist's URL for a player that reaches this machine as ``host``."""
        return f"http://{host_for_url(host)}:{self.port}/{PLAYLIST}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> str:
        """Start ffmpeg and the HTTP server; return the playback URL once the first segment is listed."""
        if self.running:
            return self.playback_url
        self.folder = Path(tempfile.mkdtemp(prefix="ivs-hls-"))
        atexit.register(self.stop)  # a kernel that exits normally removes the folder too
        self._segments_listed = 0
        self._ffmpeg_log.clear()
        try:
            self._start_http()
            spawned = threading.Event()
            self._reader = threading.Thread(target=self._run_ffmpeg, args=(spawned,), name="ivs-hls-ffmpeg",
                                            daemon=True)
            self._reader.start()
            spawned.wait()
            if not self.wait_for_segments(1, timeout):
                problem = f"no HLS segment after {timeout} s" if self.running else "ffmpeg stopped"
                raise StreamError(f"{problem}:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise
        log.info("HLS test stream at %s", self.playback_url)
        return self.playback_url

    def wait_for_segments(self, count: int, timeout: float) -> bool:
        """Block until the playlist has listed ``count`` segments since start; False on timeout or exit."""
        with self._progress:
            self._progress.wait_for(lambda: self._segments_listed >= count or not self.running, timeout)
            return self._segments_listed >= count

    def stop(self) -> None:
        """Terminate and reap ffmpeg, close the HTTP server, remove the folder; safe to call twice."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        self._stop_http()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        atexit.unregister(self.stop)

    def __enter__(self) -> HlsTestStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<HlsTestStream {'running' if self.running else 'stopped'} {self.playback_url}>"

    # -- ffmpeg ------------------------------------------------------------------------------
    def _command(self) -> list[str]:
        """The ffmpeg command line: real-time test card and tone, x264 baseline, live HLS window."""
        import imageio_ffmpeg  # imported here: only the stream needs the ffmpeg wheel

        # Real time (-re), after a burst of a few segments: players get a buffer at once, and the
        # log line that follows the first playlist write comes immediately instead of a segment later.
        realtime = ["-re", "-readrate_initial_burst", str(STARTUP_SEGMENTS * self.segment_seconds)]
        return [
            *clock_and_tone(imageio_ffmpeg.get_ffmpeg_exe(), width=self.width, height=self.height, fps=self.fps,
                       keyframe_seconds=self.segment_seconds, tone_hz=self.tone_hz, realtime=realtime),
            "-f", "hls", "-hls_time", str(self.segment_seconds), "-hls_list_size", str(self.list_size),
            "-hls_flags", "delete_segments+independent_segments",
            "-hls_segment_filename", SEGMENT_NAME, PLAYLIST,
        ]

    def _run_ffmpeg(self, spawned: threading.Event) -> None:
        """Own ffmpeg for its whole life: spawn it here so its parent-death signal follows this thread."""
        assert self.folder is not None
        try:
            process = self.process = subprocess.Popen(
                self._command(), cwd=self.folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, errors="replace", preexec_fn=die_with_parent())
        except OSError as exc:
            self._ffmpeg_log.append(f"cannot run ffmpeg: {exc}")
            return
        finally:
            spawned.set()
        assert process.stderr is not None
        for line in process.stderr:  # progress comes from the log: no polling of the folder
            self._ffmpeg_log.append(line.rstrip())
            flushed = _SEGMENT_FLUSHED.search(line)
            if flushed:
                with self._progress:
                    self._segments_listed = int(flushed[1])
                    self._progress.notify_all()
        process.wait()
        with self._progress:
            self._progress.notify_all()  # waiters see ``running`` turn False

    def _log_tail(self) -> str:
        return "\n".join(self._ffmpeg_log)

    # -- HTTP --------------------------------------------------------------------------------
    def _start_http(self) -> None:
        sockets = tornado.netutil.bind_sockets(self.port, self.host)
        self.port = sockets[0].getsockname()[1]
        assert self.folder is not None
        folder = self.folder

        async def serve() -> tornado.httpserver.HTTPServer:
            server = tornado.httpserver.HTTPServer(application(folder))
            server.add_sockets(sockets)
            return server

        self._server = self._http.start().submit(serve(), detached=True).result(timeout=10)

    def _stop_http(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            async def close() -> None:
                server.stop()
                await server.close_all_connections()

            self._http.run(close(), timeout=10)
        self._http.stop()
