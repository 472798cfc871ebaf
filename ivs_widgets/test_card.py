"""The built-in source: ffmpeg's clock-and-tone test card, as one command line and as an encoder process.

Neutral ground between the two sides. The sandbox plays the card as its HLS test stream and publishes
it to a channel (``Sandbox.go_live``); the client side publishes the same card to a channel on AWS
(``Backend.go_live``). Both build the command here, so the picture, tone and encoding are the same
wherever a learner goes live. ffmpeg is imageio-ffmpeg's: nothing is installed system-wide.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Self
from urllib.parse import urlsplit

from ivs_widgets.protocol.errors import IvsWidgetsError

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class StreamError(IvsWidgetsError, RuntimeError):
    """ffmpeg could not start the stream, or the stream did not go live; the message carries the end of
    ffmpeg's log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="StreamError")


def ffmpeg_exe() -> str:
    import imageio_ffmpeg  # imported here: only live video needs the ffmpeg wheel

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def clock_and_tone(ffmpeg: str, *, width: int, height: int, fps: int, keyframe_seconds: int, tone_hz: int,
                   realtime: list[str]) -> list[str]:
    """ffmpeg up to its output: the test card (a running wall clock where a font is found) and a sine
    tone, encoded as x264 baseline (a keyframe every ``keyframe_seconds``) and AAC; ``realtime`` are
    the input options that pace it (``-re`` …). The test stream and the channel feed both use it."""
    video = f"testsrc=size={width}x{height}:rate={fps}"
    if can_draw_text(ffmpeg):
        video += (r",drawtext=text='%{localtime\:%T}':x=8:y=8:fontsize=" + str(height // 8)
                  + ":fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4")
    gop = str(fps * keyframe_seconds)  # one keyframe per segment: each segment starts clean
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
        *realtime, "-f", "lavfi", "-i", video,
        *realtime, "-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=44100",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
        "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "48k", "-ac", "1",
    ]


@functools.cache
def can_draw_text(ffmpeg: str) -> bool:
    """Whether drawtext finds a font through fontconfig; without one ffmpeg refuses the whole graph.

    Without a font the stream still shows ``testsrc``'s own running counter, just not the clock.
    """
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "color=size=32x32:duration=0.04,drawtext=text=0", "-f", "null", "-"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return probe.returncode == 0


@functools.cache
def output_protocols(ffmpeg: str) -> frozenset[str]:
    """The protocols this ffmpeg can write to (``ffmpeg -protocols``): a build without TLS has no ``rtmps``."""
    listed = subprocess.run([ffmpeg, "-hide_banner", "-protocols"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=30).stdout
    return frozenset(listed.partition("Output:")[2].split())


def die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM ffmpeg when the thread that spawned it dies.

    A notebook kernel that is killed (restart, ``shutdown_kernel(now=True)``) never runs ``stop()``;
    without this an orphaned encoder would keep a core busy. The ctypes call is bound before the
    fork so the child only makes one libc call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, _PR_SET_PDEATHSIG, int(signal.SIGTERM))


class TestCardFeed:
    """``TestCardFeed(rtmp_url).start()`` publishes the card as an encoder would (FLV over RTMP, or RTMPS to
    AWS) until ``stop()``; the same picture and tone as the HLS test stream, a keyframe every
    ``keyframe_seconds`` (the sandbox packager's segment length). ``with feed:`` stops it at the end."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, rtmp_url: str, *, channel_arn: str = "", playback_url: str = "", width: int = 640,
                 height: int = 360, fps: int = 15, keyframe_seconds: int = 1, tone_hz: int = 440) -> None:
        self.rtmp_url = rtmp_url
        #: The channel it feeds and where to watch it (``go_live`` fills them in).
        self.channel_arn, self.playback_url = channel_arn, playback_url
        self.width, self.height, self.fps = width, height, fps
        self.keyframe_seconds = keyframe_seconds
        self.tone_hz = tone_hz
        self.process: subprocess.Popen[str] | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=30)
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        ffmpeg = ffmpeg_exe()
        scheme = urlsplit(self.rtmp_url).scheme
        if scheme not in output_protocols(ffmpeg):
            raise StreamError(f"this ffmpeg ({ffmpeg}) cannot stream over {scheme}:// (it was built without it, "
                              "e.g. without TLS for rtmps): stream from OBS instead, or install an ffmpeg with "
                              f"{scheme} support")
        return [*clock_and_tone(ffmpeg, width=self.width, height=self.height, fps=self.fps,
                                keyframe_seconds=self.keyframe_seconds, tone_hz=self.tone_hz, realtime=["-re"]),
                "-f", "flv", self.rtmp_url]

    def start(self) -> TestCardFeed:
        """Spawn the encoder (ffmpeg dies with the thread that started it, as the test stream's does)."""
        if self.running:
            return self
        command = self.command()
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True, errors="replace",
                                            preexec_fn=die_with_parent())
        except OSError as exc:
            raise StreamError(f"cannot run ffmpeg: {exc}") from exc
        self._reader = threading.Thread(target=self._read_log, name="ivs-test-card-feed", daemon=True)
        self._reader.start()
        return self

    def log_tail(self) -> str:
        return "\n".join(self._log)

    def stop(self) -> None:
        """Stop publishing (the channel goes offline within moments); safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_log(self) -> None:
        """Keep the end of ffmpeg's log, and reap ffmpeg once it ends (StopStream, a refused key, a signal):
        a dead child left unreaped looks alive to whoever waits for the process's children (ipykernel's
        shutdown does, and would then be killed before the kernel's clean-up at exit)."""
        process = self.process
        assert process is not None and process.stderr is not None
        for line in process.stderr:
            self._log.append(line.rstrip())
        process.wait()

    def __repr__(self) -> str:
        return f"<TestCardFeed {'running' if self.running else 'stopped'} {self.rtmp_url.rsplit('/', 1)[0]}/…>"
