"""The local live HLS test stream: real ffmpeg, real HTTP on loopback, nothing left behind."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.stream.models import PLAYLIST, HlsTestStream, StreamError

TS_SYNC_BYTE = 0x47


@pytest.fixture
def stream() -> Iterator[HlsTestStream]:
    with HlsTestStream(list_size=3) as running:
        yield running


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def segments(playlist: bytes) -> list[str]:
    return [line for line in playlist.decode().splitlines() if line and not line.startswith("#")]


def media_sequence(playlist: bytes) -> int:
    tag = "#EXT-X-MEDIA-SEQUENCE:"
    return next(int(line[len(tag):]) for line in playlist.decode().splitlines() if line.startswith(tag))


def ffmpeg_children() -> list[int]:
    """ffmpeg processes whose parent is this test process (the stream's encoders)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, _, rest = stat.rpartition(")")
        if command.split("(", 1)[1].startswith("ffmpeg") and int(rest.split()[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def test_playlist_and_segments_are_served_with_hls_types_and_cors(stream: HlsTestStream) -> None:
    assert stream.playback_url.startswith("http://127.0.0.1:") and stream.playback_url.endswith(".m3u8")

    status, headers, playlist = fetch(stream.playback_url)
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cache-Control"] == "no-cache"
    assert playlist.startswith(b"#EXTM3U") and b"#EXT-X-ENDLIST" not in playlist  # live, not VOD
    assert segments(playlist), playlist

    base = stream.playback_url.rsplit("/", 1)[0]
    status, headers, segment = fetch(f"{base}/{segments(playlist)[0]}")
    assert status == 200
    assert headers["Content-Type"] == "video/mp2t"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert segment[0] == TS_SYNC_BYTE and len(segment) > 1000

    status, headers, _ = fetch(f"{base}/missing.ts")
    assert status == 404 and headers["Access-Control-Allow-Origin"] == "*"
    assert fetch(f"{base}/..%2F{PLAYLIST}")[0] == 404  # only the stream's own files


def test_the_live_window_slides_and_old_segments_go_away(stream: HlsTestStream) -> None:
    base = stream.playback_url.rsplit("/", 1)[0]
    first = fetch(stream.playback_url)[2]
    oldest = segments(first)[0]

    assert stream.wait_for_segments(stream.list_size + 3, timeout=30)

    later = fetch(stream.playback_url)[2]
    assert media_sequence(later) > media_sequence(first)
    assert len(segments(later)) == stream.list_size
    assert oldest not in segments(later)
    assert fetch(f"{base}/{oldest}")[0] == 404  # deleted from the folder, not only from the list


def test_stop_reaps_ffmpeg_closes_the_port_and_removes_the_folder() -> None:
    stream = HlsTestStream()
    url = stream.start()
    process, folder = stream.process, stream.folder
    assert process is not None and folder is not None and folder.is_dir()
    assert ffmpeg_children() == [process.pid]

    stream.stop()

    assert process.returncode is not None  # reaped, not a zombie
    assert ffmpeg_children() == []
    assert not folder.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
    stream.stop()  # twice is fine


def test_sandbox_starts_the_stream_once_and_stops_it_with_itself() -> None:
    with Sandbox() as sandbox:
        url = sandbox.start_test_stream()
        assert sandbox.start_test_stream() == url
        assert fetch(url)[0] == 200
        assert len(ffmpeg_children()) == 1
    assert ffmpeg_children() == []
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_a_failing_ffmpeg_is_reported_with_its_log_and_cleaned_up() -> None:
    stream = HlsTestStream(width=-5)
    with pytest.raises(StreamError, match="Invalid argument"):
        stream.start()
    assert stream.folder is None and stream.process is None
    assert ffmpeg_children() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_ffmpeg_does_not_outlive_a_killed_kernel(tmp_path: Path) -> None:
    """A kernel killed outright (restart, nbval) never calls stop(); its encoder must still go."""
    script = ("from ivs_widgets.sandbox.stream.models import HlsTestStream\n"
              "import sys\n"
              "s = HlsTestStream(); s.start()\n"
              "print(s.process.pid, s.folder, flush=True)\n"
              "sys.stdin.read()\n")
    kernel = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert kernel.stdout is not None
    pid_text, folder = kernel.stdout.readline().split()
    encoder = os.pidfd_open(int(pid_text))
    try:
        kernel.kill()
        kernel.wait()
        readable, _, _ = select.select([encoder], [], [], 15)  # a pidfd turns readable when it exits
        assert readable, "ffmpeg kept running after its Python process was killed"
    finally:
        os.close(encoder)
        shutil.rmtree(folder, ignore_errors=True)  # SIGKILL skipped atexit; only the folder remains
