"""The built-in source as an encoder: ffmpeg's clock-and-tone test card pushed over RTMP to a channel,
for learners and tests without OBS (``Sandbox.go_live``, ``ivs-sandbox --go-live``)."""

from __future__ import annotations

import collections
import subprocess
import threading

from ivs_widgets.sandbox.stream.models import StreamError, clock_and_tone, die_with_parent


class TestCardFeed:
    """``TestCardFeed(rtmp_url).start()`` publishes until ``stop()``; the same picture and tone as the
    HLS test stream, a keyframe every ``keyframe_seconds`` (the packager's segment length)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, rtmp_url: str, *, channel_arn: str = "", playback_url: str = "", width: int = 640,
                 height: int = 360, fps: int = 15, keyframe_seconds: int = 1, tone_hz: int = 440) -> None:
        self.rtmp_url = rtmp_url
        #: The channel it feeds and where to watch it (``Sandbox.go_live`` fills them in).
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
        import imageio_ffmpeg  # imported here: only live video needs the ffmpeg wheel

        return [*clock_and_tone(imageio_ffmpeg.get_ffmpeg_exe(), width=self.width, height=self.height, fps=self.fps,
                                keyframe_seconds=self.keyframe_seconds, tone_hz=self.tone_hz, realtime=["-re"]),
                "-f", "flv", self.rtmp_url]

    def start(self) -> TestCardFeed:
        """Spawn the encoder (ffmpeg dies with the thread that started it, as the test stream's does)."""
        if self.running:
            return self
        try:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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

    def _read_log(self) -> None:
        process = self.process
        assert process is not None and process.stderr is not None
        for line in process.stderr:
            self._log.append(line.rstrip())

    def __repr__(self) -> str:
        return f"<TestCardFeed {'running' if self.running else 'stopped'} {self.rtmp_url.rsplit('/', 1)[0]}/…>"
