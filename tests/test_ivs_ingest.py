"""Going live for real: ffmpeg (imageio-ffmpeg) publishes over RTMP with a channel's stream key, the
channel goes LIVE, its playbackUrl serves a live CMAF playlist, PutMetadata lands in the segments as
emsg/ID3, and the stream ends when the encoder stops or on StopStream. Bad RTMP peers are closed
without disturbing a live publisher."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ivsutil import ivs_error
from mp4util import parse_emsg, top_boxes, txxx_text

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.ivs import fmp4, ingest, rtmp
from ivs_widgets.test_card import TestCardFeed


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox for the module (conftest's ``ivs`` uses it); each test has its own channel."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def channel(ivs: Any) -> dict[str, Any]:
    return ivs.create_channel(name="ingest-test")


@pytest.fixture
def feeds() -> Iterator[list[TestCardFeed]]:
    started: list[TestCardFeed] = []
    yield started
    for feed in started:
        feed.stop()


def publish(sandbox: Sandbox, key: str, feeds: list[TestCardFeed]) -> TestCardFeed:
    """ffmpeg -re (test card, a keyframe a second) -f flv rtmp://…/app/<key>, as the README says."""
    feed = TestCardFeed(sandbox.rtmp_url + key, width=320, height=180)
    feeds.append(feed.start())
    return feed


def wait(sandbox: Sandbox, condition: Callable[[], bool], timeout: float) -> None:
    sandbox.run(sandbox.ingest.wait_until(condition, timeout), timeout=timeout + 5)


def wait_segment(sandbox: Sandbox, arn: str, after: int = -1, timeout: float = 30) -> int:
    return sandbox.run(sandbox.ingest.wait_for_segments(arn, after, timeout), timeout=timeout + 5)


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], b""


def segment_urls(playlist_url: str, playlist: str) -> list[str]:
    base = playlist_url.rsplit("/", 1)[0]
    return [f"{base}/{line}" for line in playlist.splitlines() if line and not line.startswith("#")]


def go_live(sandbox: Sandbox, channel: dict[str, Any], feeds: list[TestCardFeed]) -> str:
    arn = channel["channel"]["arn"]
    publish(sandbox, channel["streamKey"]["value"], feeds)
    wait_segment(sandbox, arn)
    return arn


def test_ffmpeg_goes_live_and_the_playback_url_serves_an_advancing_live_playlist(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed]) -> None:
    arn, url = channel["channel"]["arn"], channel["channel"]["playbackUrl"]
    assert channel["channel"]["ingestEndpoint"] == f"127.0.0.1:{sandbox.ingest_port}"
    assert fetch(url)[0] == 404  # offline: nothing to play
    publish(sandbox, channel["streamKey"]["value"], feeds)
    wait(sandbox, lambda: sandbox.streams.live(arn) is not None, timeout=5)
    stream = ivs.get_stream(channelArn=arn)["stream"]
    assert (stream["state"], stream["health"], stream["playbackUrl"]) == ("LIVE", "HEALTHY", url)

    first = wait_segment(sandbox, arn)
    later = wait_segment(sandbox, arn, after=first + 1)
    status, content_type, body = fetch(url)
    assert (status, content_type) == (200, "application/vnd.apple.mpegurl")
    playlist = body.decode()
    assert playlist.startswith("#EXTM3U\n") and "#EXT-X-ENDLIST" not in playlist
    assert "#EXT-X-MAP:URI=" in playlist and "#EXT-X-PROGRAM-DATE-TIME:" in playlist
    segments = segment_urls(url, playlist)
    assert segments[-1].endswith(f"/seg{later:05d}.m4s") and len(segments) >= 2
    status, content_type, init = fetch(url.rsplit("/", 1)[0] + "/" + playlist.split('URI="')[1].split('"')[0])
    assert (status, content_type) == (200, "video/mp4")
    scales = fmp4.track_timescales(init)
    assert len(scales) == 2  # video and audio, copied
    starts = []
    for segment_url in segments:
        status, content_type, data = fetch(segment_url)
        assert (status, content_type) == (200, "video/iso.segment")
        fragment = fmp4.fragments(data)[0]
        starts.append(fragment.start / scales[fragment.track_id])
        assert 0.5 < fragment.duration / scales[fragment.track_id] < 1.5  # ~1 s segments
    assert starts == sorted(starts) and starts[-1] - starts[0] >= 1


def test_timed_metadata_lands_in_later_segments_as_emsg_id3_at_the_live_point(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed]) -> None:
    arn, url = go_live(sandbox, channel, feeds), channel["channel"]["playbackUrl"]
    put_at: list[float] = []
    newest = wait_segment(sandbox, arn)
    for n in range(3):
        put_at.append(time.time())
        ivs.put_metadata(channelArn=arn, metadata=f'{{"question": {n}, "text": "2 + 2 = ?"}}')
        newest = wait_segment(sandbox, arn, after=newest)
    newest = wait_segment(sandbox, arn, after=newest)
    playlist = fetch(url)[2].decode()
    cues = []
    for segment_url in segment_urls(url, playlist):
        data = fetch(segment_url)[2]
        boxes = [kind for kind, _ in top_boxes(data)]
        assert boxes.index(b"moof") > max((i for i, kind in enumerate(boxes) if kind == b"emsg"), default=-1)
        cues += [parse_emsg(payload) for kind, payload in top_boxes(data) if kind == b"emsg"]
    assert [txxx_text(cue.message_data) for cue in cues] == [
        f'{{"question": {n}, "text": "2 + 2 = ?"}}' for n in range(3)]
    assert all((c.version, c.scheme_id_uri, c.value) == (1, "https://aomedia.org/emsg/ID3", "") for c in cues)
    times = [cue.seconds for cue in cues]
    assert times == sorted(times) and len(set(times)) == 3
    # The stream's clock maps to the ingest's wall clock (PROGRAM-DATE-TIME): each cue sits within 1 s
    # of where the stream was when PutMetadata was called.
    packager = sandbox.ingest.packager(arn)
    assert packager is not None and packager._wall_at_zero is not None
    for cue_time, called in zip(times, put_at, strict=True):
        assert abs(packager._wall_at_zero + cue_time - called) < 1.0


def test_a_wrong_key_is_refused_and_the_log_says_why_once(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivs_widgets.sandbox.ivs.ingest")
    feed = publish(sandbox, "sk_us-east-1_notAKeyAtAll_0000000000", feeds)
    assert feed.process is not None and feed.process.wait(timeout=30) != 0  # the encoder is told and gives up
    assert "BadName" in feed.log_tail() or "INVALID_STREAM_KEY" in feed.log_tail()
    refusals = [r for r in caplog.records if "INVALID_STREAM_KEY" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream(channelArn=channel["channel"]["arn"])
    ivs_error(excinfo, "ChannelNotBroadcasting", 404)


def test_a_second_encoder_on_a_live_channel_is_refused_while_other_channels_stay_live(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed]) -> None:
    arn = go_live(sandbox, channel, feeds)
    other = ivs.create_channel(name="second")
    other_arn = go_live(sandbox, other, feeds)
    second = publish(sandbox, channel["streamKey"]["value"], feeds)
    assert second.process is not None and second.process.wait(timeout=30) != 0
    assert {s["channelArn"] for s in ivs.list_streams()["streams"]} >= {arn, other_arn}
    for live_arn in (arn, other_arn):
        newest = wait_segment(sandbox, live_arn)
        wait_segment(sandbox, live_arn, after=newest)


def test_when_the_encoder_stops_the_channel_goes_offline_and_the_session_keeps_its_configuration(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed]) -> None:
    arn = go_live(sandbox, channel, feeds)
    feeds[0].stop()
    wait(sandbox, lambda: sandbox.streams.live(arn) is None, timeout=10)
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream(channelArn=arn)
    ivs_error(excinfo, "ChannelNotBroadcasting", 404)
    assert fetch(channel["channel"]["playbackUrl"])[0] == 404
    session = ivs.get_stream_session(channelArn=arn)["streamSession"]
    assert session["endTime"] >= session["startTime"]
    video, audio = session["ingestConfiguration"]["video"], session["ingestConfiguration"]["audio"]
    assert (video["codec"], video["avcProfile"], video["videoWidth"], video["videoHeight"],
            video["targetFramerate"]) == ("avc1.42C00C", "Baseline", 320, 180, 15)
    assert video["encoder"].startswith("Lavf")
    assert (audio["codec"], audio["sampleRate"], audio["channels"]) == ("mp4a.40.2", 44100, 1)
    assert audio["targetBitrate"] > 0
    assert not list(sandbox.ingest._publishers)  # the packager went with the stream


def test_stop_stream_drops_the_encoder(sandbox: Sandbox, ivs: Any, channel: dict[str, Any],
                                       feeds: list[TestCardFeed]) -> None:
    arn = go_live(sandbox, channel, feeds)
    packager = sandbox.ingest.packager(arn)
    assert packager is not None and packager.process is not None
    ffmpeg = packager.process.pid
    ivs.stop_stream(channelArn=arn)
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream(channelArn=arn)
    ivs_error(excinfo, "ChannelNotBroadcasting", 404)
    assert fetch(channel["channel"]["playbackUrl"])[0] == 404
    assert feeds[0].process is not None and feeds[0].process.wait(timeout=30) != 0  # the encoder was dropped
    wait(sandbox, lambda: packager.process is None, timeout=15)
    with pytest.raises(ProcessLookupError):
        os.kill(ffmpeg, 0)  # the packager's ffmpeg is reaped, not orphaned


def test_boto3_and_the_aws_cli_see_a_live_channel(sandbox: Sandbox, ivs: Any, channel: dict[str, Any],
                                                  feeds: list[TestCardFeed]) -> None:
    arn = go_live(sandbox, channel, feeds)
    assert ivs.get_stream(channelArn=arn)["stream"]["state"] == "LIVE"
    env = {**os.environ, **sandbox.environment(), "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    done = subprocess.run([sys.executable, "-m", "awscli", "ivs", "get-stream", "--channel-arn", arn,
                           "--query", "stream.state", "--output", "text"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "LIVE"), done.stderr


def _closed_within(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_malformed_rtmp_peers_are_closed_without_disturbing_a_live_publisher(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], feeds: list[TestCardFeed],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "IDLE_SECONDS", 2.0)
    arn = go_live(sandbox, channel, feeds)
    address = ("127.0.0.1", sandbox.ingest_port)
    peers = {name: socket.create_connection(address) for name in ("random", "half", "silent", "garbage-chunks")}
    peers["random"].sendall(b"\x16\x03\x01" + os.urandom(3000))  # a TLS hello, say: not RTMP version 3
    peers["half"].sendall(b"\x03" + os.urandom(700))  # C0 and half of C1, then nothing
    peers["garbage-chunks"].sendall(b"\x03" + bytes(1536))
    assert len(peers["garbage-chunks"].recv(1 + 2 * 1536, socket.MSG_WAITALL)) == 1 + 2 * 1536  # S0 S1 S2
    peers["garbage-chunks"].sendall(bytes(1536) + b"\x44" + os.urandom(2000))  # C2, then a type 1 header first
    for name, sock in peers.items():
        assert _closed_within(sock, 15), f"{name} peer still connected"
        sock.close()
    newest = wait_segment(sandbox, arn)
    wait_segment(sandbox, arn, after=newest)  # the publisher went on throughout
    assert ivs.get_stream(channelArn=arn)["stream"]["state"] == "LIVE"


class Publisher:
    """A minimal RTMP client written from the specification: what OBS sends, one command at a time."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sock = socket.create_connection(("127.0.0.1", sandbox.ingest_port), timeout=10)
        self.reader = rtmp.ChunkReader()
        self.sock.sendall(b"\x03" + bytes(1536))
        assert len(self.sock.recv(1 + 2 * 1536, socket.MSG_WAITALL)) == 1 + 2 * 1536
        self.sock.sendall(bytes(1536))

    def call(self, name: str, transaction: float, *args: Any, stream_id: int = 0) -> list[Any]:
        """Send a command; the AMF0 values of the next command the server answers with."""
        self.sock.sendall(rtmp.command(name, transaction, *args, stream_id=stream_id))
        while True:
            for message in self.reader.feed(self.sock.recv(4096) or b""):
                if message.type_id == rtmp.COMMAND_AMF0:
                    return rtmp.amf0_decode(message.payload)


def test_a_publisher_goes_live_by_the_book_and_ends_with_fcunpublish(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any]) -> None:
    arn, key = channel["channel"]["arn"], channel["streamKey"]["value"]
    wrong_app = Publisher(sandbox)
    refused = wrong_app.call("connect", 1, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})
    assert refused[0] == "_error" and refused[3]["code"] == "NetConnection.Connect.Rejected"
    assert _closed_within(wrong_app.sock, 10)
    wrong_app.sock.close()

    client = Publisher(sandbox)
    connected = client.call("connect", 1, {"app": "app", "type": "nonprivate", "flashVer": "FMLE/3.0"})
    assert (connected[0], connected[1], connected[3]["code"]) == ("_result", 1, "NetConnection.Connect.Success")
    client.sock.sendall(rtmp.command("releaseStream", 2, None, key) + rtmp.command("FCPublish", 3, None, key))
    created = client.call("createStream", 4, None)
    assert created[:2] == ["_result", 4] and created[3] == 1
    started = client.call("publish", 5, None, key, "live", stream_id=1)
    assert (started[0], started[3]["code"]) == ("onStatus", "NetStream.Publish.Start")
    assert ivs.get_stream(channelArn=arn)["stream"]["state"] == "LIVE"
    ivs.put_metadata(channelArn=arn, metadata="before the first frame")  # kept for the packager

    client.sock.sendall(rtmp.command("FCUnpublish", 6, None, key))
    wait(sandbox, lambda: sandbox.streams.live(arn) is None, timeout=10)
    assert _closed_within(client.sock, 10)  # the server closes the connection once the stream ends
    client.sock.close()
    assert "endTime" in ivs.get_stream_session(channelArn=arn)["streamSession"]


def test_stopping_the_sandbox_leaves_no_encoder_packager_or_folder_behind() -> None:
    with Sandbox() as sandbox:
        feed = sandbox.go_live()
        packager = sandbox.ingest.packager(feed.channel_arn)
        assert packager is not None and packager.process is not None and packager.folder is not None
        ffmpegs = [feed.process.pid if feed.process else 0, packager.process.pid]
        folder = packager.folder
    for pid in ffmpegs:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended and reaped
    assert not folder.exists()


@pytest.mark.parametrize("track, options", [
    ("audio", ["-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "aac"]),
    ("video", ["-f", "lavfi", "-i", "testsrc=size=320x180:rate=15", "-c:v", "libx264", "-g", "15",
               "-pix_fmt", "yuv420p"]),
], ids=["audio-only", "video-only"])
def test_a_stream_with_one_track_plays_and_reports_that_track(sandbox: Sandbox, ivs: Any, channel: dict[str, Any],
                                                              track: str, options: list[str]) -> None:
    import imageio_ffmpeg

    arn = channel["channel"]["arn"]
    encoder = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re",
                                *options, "-f", "flv", sandbox.rtmp_url + channel["streamKey"]["value"]],
                               stdin=subprocess.DEVNULL)
    try:
        newest = wait_segment(sandbox, arn)
        wait_segment(sandbox, arn, after=newest)
        assert list(ivs.get_stream_session(channelArn=arn)["streamSession"]["ingestConfiguration"]) == [track]
    finally:
        encoder.terminate()
        encoder.wait(timeout=15)


def test_without_a_port_the_ingest_takes_rtmps_own_or_a_free_one_when_it_is_taken() -> None:
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 1935))
            holder.listen()
            held = True
        except OSError:  # another program holds it, and may let it go at any moment
            held = False
        with Sandbox(ingest_port=None) as sandbox:
            assert sandbox.ingest_port != 0 and (sandbox.ingest_port != 1935 or not held)
            assert sandbox.rtmp_url == f"rtmp://127.0.0.1:{sandbox.ingest_port}/app/"
