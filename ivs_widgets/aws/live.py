"""Going live on an IVS channel with the built-in source, and deleting channels that may still be live
(client side: boto3 ``ivs`` only, never the sandbox).

How the kit tells AWS from a sandbox standing in for it: AWS's ``ingestEndpoint`` is a host name
(``<id>.global-contribute.live-video.net``) and encoders use RTMPS on port 443; a sandbox's carries
its RTMP port (``127.0.0.1:1935``), where it takes plain RTMP. Nothing else differs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from ivs_widgets.test_card import StreamError, TestCardFeed

#: How often GetStream is asked while a channel goes live or offline (AWS answers in well under that).
POLL_SECONDS = 1.0


def ingest_server(ingest_endpoint: str) -> str:
    """The encoder's server (OBS: Settings → Stream → Server) for a channel's ``ingestEndpoint``:
    ``rtmps://<host>:443/app/`` on AWS, ``rtmp://<host>:<port>/app/`` for an endpoint with a port (a sandbox)."""
    port = ingest_endpoint.rpartition(":")[2]
    if ":" in ingest_endpoint and port.isdigit():
        return f"rtmp://{ingest_endpoint}/app/"
    return f"rtmps://{ingest_endpoint}:443/app/"


def stream_keys(ivs: Any, channel_arn: str) -> list[str]:
    """The values of the channel's stream keys (ListStreamKeys gives their ARNs, GetStreamKey the value)."""
    return [ivs.get_stream_key(arn=key["arn"])["streamKey"]["value"]
            for key in ivs.list_stream_keys(channelArn=channel_arn)["streamKeys"]]


def go_live(ivs: Any, channel_arn: str, stream_key: str | None, timeout: float) -> TestCardFeed:
    """Push the test card to the channel's ingest with ``stream_key`` (else its own, made if it has none) and
    return once GetStream says LIVE; StreamError (with ffmpeg's log) if ffmpeg stops first or time runs out."""
    channel = ivs.get_channel(arn=channel_arn)["channel"]
    if stream_key is None:
        keys = stream_keys(ivs, channel_arn)
        stream_key = keys[0] if keys else ivs.create_stream_key(channelArn=channel_arn)["streamKey"]["value"]
    feed = TestCardFeed(ingest_server(channel["ingestEndpoint"]) + stream_key, channel_arn=channel_arn,
                        playback_url=channel["playbackUrl"]).start()
    try:
        wait_for_state(ivs, channel_arn, live=True, timeout=timeout, encoder=feed.process)
    except StreamError as error:
        feed.stop()
        raise StreamError(f"{error.message}:\n{feed.log_tail()}") from None
    return feed


def wait_for_state(ivs: Any, channel_arn: str, *, live: bool, timeout: float,
                   encoder: subprocess.Popen[str] | None = None) -> None:
    """Ask GetStream until the channel is LIVE (``live``) or not broadcasting; StreamError after ``timeout``
    seconds, or as soon as ``encoder`` exits (a refused stream key ends ffmpeg at once)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ivs.get_stream(channelArn=channel_arn)["stream"]["state"] == "LIVE" and live:
                return
        except ivs.exceptions.ChannelNotBroadcasting:
            if not live:
                return
        if time.monotonic() > deadline:
            raise StreamError(f"channel {channel_arn} is still {'offline' if live else 'live'} after {timeout} s")
        if encoder is None:
            time.sleep(POLL_SECONDS)
            continue
        try:
            encoder.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        raise StreamError(f"ffmpeg stopped before channel {channel_arn} went live (exit status {encoder.returncode}; "
                          "a wrong stream key, or the ingest refused the stream)")


def delete_channel(ivs: Any, channel_arn: str, *, timeout: float = 30) -> None:
    """DeleteChannel, first ending a stream still live on it: IVS refuses to delete a live channel
    (ConflictException), and a stream lingers a moment after its encoder stops."""
    try:
        ivs.delete_channel(arn=channel_arn)
        return
    except ivs.exceptions.ConflictException:
        pass
    try:
        ivs.stop_stream(channelArn=channel_arn)
    except ivs.exceptions.ChannelNotBroadcasting:
        pass
    wait_for_state(ivs, channel_arn, live=False, timeout=timeout)
    ivs.delete_channel(arn=channel_arn)


def record_channels(ivs: Any, record: Callable[[str, Callable[[], None]], None]) -> None:
    """Have ``record(what, delete)`` called for each channel made through the ``ivs`` client, whoever makes it."""
    def recorded(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if http_response.status_code < 300 and "channel" in parsed:
            arn = parsed["channel"]["arn"]
            record(f"IVS channel {arn}", lambda: delete_channel(ivs, arn))

    ivs.meta.events.register("after-call.ivs.CreateChannel", recorded)
