"""Live streams: the lifecycle the ingest drives through ``Sandbox.streams`` (``stream_started`` /
``stream_ended``), read back through real boto3 (GetStream, ListStreams, sessions), StopStream and
PutMetadata with the listeners the ingest and the packager register."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from ivsutil import MISSING_CHANNEL, ivs_error

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.errors import ApiError
from ivs_widgets.sandbox.ivs.streams import LiveStream, StreamRefused

STREAM_ID = re.compile(r"st-[A-Za-z0-9]{23}")
INGEST = {"video": {"codec": "avc1.42C01F", "videoWidth": 1280, "videoHeight": 720, "targetBitrate": 2_500_000,
                    "targetFramerate": 30},
          "audio": {"codec": "mp4a.40.2", "sampleRate": 48_000, "channels": 2, "targetBitrate": 128_000}}


@pytest.fixture
def channel(ivs: Any) -> dict[str, Any]:
    """A channel and its stream key, as CreateChannel answers them."""
    return ivs.create_channel(name="live")


@pytest.fixture
def live(sandbox: Sandbox, channel: dict[str, Any]) -> LiveStream:
    return sandbox.streams.stream_started(channel["streamKey"]["value"], INGEST)


def test_an_offline_channel_is_not_broadcasting(ivs: Any, channel: dict[str, Any]) -> None:
    arn = channel["channel"]["arn"]
    for call in (lambda: ivs.get_stream(channelArn=arn), lambda: ivs.stop_stream(channelArn=arn),
                 lambda: ivs.put_metadata(channelArn=arn, metadata="hello")):
        with pytest.raises(ClientError) as excinfo:
            call()
        ivs_error(excinfo, "ChannelNotBroadcasting", 404)
    assert ivs.list_streams()["streams"] == []
    assert ivs.list_stream_sessions(channelArn=arn)["streamSessions"] == []
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream_session(channelArn=arn)
    ivs_error(excinfo, "ResourceNotFoundException", 404)


@pytest.mark.parametrize("call", [
    lambda ivs: ivs.get_stream(channelArn=MISSING_CHANNEL),
    lambda ivs: ivs.stop_stream(channelArn=MISSING_CHANNEL),
    lambda ivs: ivs.put_metadata(channelArn=MISSING_CHANNEL, metadata="x"),
    lambda ivs: ivs.get_stream_session(channelArn=MISSING_CHANNEL),
    lambda ivs: ivs.list_stream_sessions(channelArn=MISSING_CHANNEL),
], ids=["GetStream", "StopStream", "PutMetadata", "GetStreamSession", "ListStreamSessions"])
def test_streams_of_a_missing_channel_are_not_found(ivs: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(ivs)
    ivs_error(excinfo, "ResourceNotFoundException", 404)


def test_a_started_stream_is_live_until_it_ends(sandbox: Sandbox, ivs: Any, channel: dict[str, Any]) -> None:
    arn = channel["channel"]["arn"]
    before = datetime.now(UTC).replace(microsecond=0)
    stream = sandbox.streams.stream_started(channel["streamKey"]["value"], INGEST)
    assert (stream.channel_arn, stream.ingest_configuration) == (arn, INGEST)
    assert sandbox.streams.live(arn) == stream

    got = ivs.get_stream(channelArn=arn)["stream"]
    assert STREAM_ID.fullmatch(got["streamId"]) and got["streamId"] == stream.stream_id
    assert (got["channelArn"], got["state"], got["health"], got["viewerCount"]) == (arn, "LIVE", "HEALTHY", 0)
    assert got["playbackUrl"] == channel["channel"]["playbackUrl"]
    assert before <= got["startTime"] <= datetime.now(UTC)
    summary = {k: v for k, v in got.items() if k != "playbackUrl"}
    assert ivs.list_streams()["streams"] == [summary]
    assert ivs.list_streams(filterBy={"health": "HEALTHY"})["streams"] == [summary]
    assert ivs.list_streams(filterBy={"health": "STARVING"})["streams"] == []
    assert ivs.list_stream_sessions(channelArn=arn)["streamSessions"] == [
        {"streamId": stream.stream_id, "startTime": got["startTime"], "hasErrorEvent": False}]

    sandbox.streams.stream_ended(arn)
    assert sandbox.streams.live(arn) is None
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream(channelArn=arn)
    ivs_error(excinfo, "ChannelNotBroadcasting", 404)
    assert ivs.list_streams()["streams"] == []
    [ended] = ivs.list_stream_sessions(channelArn=arn)["streamSessions"]
    assert ended["streamId"] == stream.stream_id and got["startTime"] <= ended["endTime"] <= datetime.now(UTC)


def test_an_ended_session_keeps_its_channel_ingest_configuration_and_events(
        sandbox: Sandbox, ivs: Any, channel: dict[str, Any], live: LiveStream) -> None:
    arn = channel["channel"]["arn"]
    open_session = ivs.get_stream_session(channelArn=arn)["streamSession"]
    assert "endTime" not in open_session
    assert [e["name"] for e in open_session["truncatedEvents"]] == ["Stream Start", "Session Created"]
    sandbox.streams.stream_ended(arn)
    ivs.update_channel(arn=arn, name="renamed")  # the session keeps the channel as it was

    session = ivs.get_stream_session(channelArn=arn, streamId=live.stream_id)["streamSession"]
    assert session == ivs.get_stream_session(channelArn=arn)["streamSession"]  # the latest, by default
    assert session["streamId"] == live.stream_id and session["startTime"] <= session["endTime"]
    assert session["channel"] == channel["channel"]
    assert session["ingestConfiguration"] == INGEST
    assert session["ingestConfigurations"] == {"videoConfigurations": [INGEST["video"]],
                                               "audioConfigurations": [INGEST["audio"]]}
    events = session["truncatedEvents"]
    assert [e["name"] for e in events] == ["Session Ended", "Stream End", "Stream Start", "Session Created"]
    assert {e["type"] for e in events} == {"IVS Stream State Change"}
    assert events[0]["eventTime"] == session["endTime"] and events[-1]["eventTime"] == session["startTime"]
    with pytest.raises(ClientError) as excinfo:
        ivs.get_stream_session(channelArn=arn, streamId="st-" + "A" * 23)
    ivs_error(excinfo, "ResourceNotFoundException", 404)


def test_each_stream_is_a_new_session_newest_first(sandbox: Sandbox, ivs: Any, channel: dict[str, Any]) -> None:
    arn, key = channel["channel"]["arn"], channel["streamKey"]["value"]
    ids = []
    for _ in range(3):
        ids.append(sandbox.streams.stream_started(key).stream_id)
        sandbox.streams.stream_ended(arn)
    assert len(set(ids)) == 3
    assert [s["streamId"] for s in ivs.list_stream_sessions(channelArn=arn)["streamSessions"]] == ids[::-1]
    first = ivs.list_stream_sessions(channelArn=arn, maxResults=2)
    rest = ivs.list_stream_sessions(channelArn=arn, maxResults=2, nextToken=first["nextToken"])
    assert [s["streamId"] for s in first["streamSessions"] + rest["streamSessions"]] == ids[::-1]
    assert "ingestConfiguration" not in ivs.get_stream_session(channelArn=arn)["streamSession"]


def test_the_ingest_is_refused_an_unknown_key_and_a_second_encoder(sandbox: Sandbox, ivs: Any,
                                                                   channel: dict[str, Any]) -> None:
    key = channel["streamKey"]
    with pytest.raises(StreamRefused) as refused:
        sandbox.streams.stream_started(f"sk_{c.SANDBOX_REGION}_not_a_key")
    assert refused.value.code == "INVALID_STREAM_KEY"
    sandbox.streams.stream_started(key["value"])
    with pytest.raises(StreamRefused) as refused:
        sandbox.streams.stream_started(key["value"])
    assert refused.value.code == "REUSE_OF_STREAM_KEY"
    sandbox.streams.stream_ended(channel["channel"]["arn"])

    ivs.delete_stream_key(arn=key["arn"])  # a deleted key starts nothing; its replacement does
    with pytest.raises(StreamRefused):
        sandbox.streams.stream_started(key["value"])
    fresh = ivs.create_stream_key(channelArn=channel["channel"]["arn"])["streamKey"]
    assert sandbox.streams.stream_started(fresh["value"]).channel_arn == channel["channel"]["arn"]


def test_an_ingest_configuration_outside_the_model_is_refused(sandbox: Sandbox, channel: dict[str, Any]) -> None:
    with pytest.raises(ApiError, match="ingestConfiguration.video.videoWidth") as refused:
        sandbox.streams.stream_started(channel["streamKey"]["value"], {"video": {"videoWidth": "wide"}})
    assert refused.value.code == "ValidationException"
    assert sandbox.streams.live(channel["channel"]["arn"]) is None


def test_a_late_end_of_an_old_stream_leaves_its_successor_live(sandbox: Sandbox, channel: dict[str, Any]) -> None:
    arn, key = channel["channel"]["arn"], channel["streamKey"]["value"]
    old = sandbox.streams.stream_started(key)
    sandbox.streams.stream_ended(arn, old.stream_id)
    new = sandbox.streams.stream_started(key)
    sandbox.streams.stream_ended(arn, old.stream_id)
    assert sandbox.streams.live(arn) == new
    sandbox.streams.stream_ended(arn)
    sandbox.streams.stream_ended(arn)  # already offline: nothing to do
    assert sandbox.streams.live(arn) is None


def test_stop_stream_disconnects_the_encoder_and_ends_the_stream(sandbox: Sandbox, ivs: Any,
                                                                 channel: dict[str, Any], live: LiveStream) -> None:
    told: list[LiveStream] = []
    sandbox.streams.stop_listeners.append(told.append)
    arn = channel["channel"]["arn"]
    assert ivs.stop_stream(channelArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert told == [live]
    assert sandbox.streams.live(arn) is None
    assert "endTime" in ivs.get_stream_session(channelArn=arn)["streamSession"]
    with pytest.raises(ClientError) as excinfo:
        ivs.stop_stream(channelArn=arn)
    ivs_error(excinfo, "ChannelNotBroadcasting", 404)
    assert told == [live]


def test_stop_stream_is_unavailable_while_the_ingest_cannot_disconnect(sandbox: Sandbox, channel: dict[str, Any],
                                                                      live: LiveStream) -> None:
    def broken(stream: LiveStream) -> None:
        raise ConnectionError("the ingest is gone")

    sandbox.streams.stop_listeners.append(broken)
    ivs = sandbox.client("ivs", config=Config(retries={"total_max_attempts": 1}))  # 503s are retried otherwise
    with pytest.raises(ClientError) as excinfo:
        ivs.stop_stream(channelArn=live.channel_arn)
    ivs_error(excinfo, "StreamUnavailable", 503)
    assert sandbox.streams.live(live.channel_arn) == live


def test_a_live_channel_can_be_neither_updated_nor_deleted(sandbox: Sandbox, ivs: Any, live: LiveStream) -> None:
    for call in (lambda: ivs.update_channel(arn=live.channel_arn, name="x"),
                 lambda: ivs.delete_channel(arn=live.channel_arn)):
        with pytest.raises(ClientError) as excinfo:
            call()
        ivs_error(excinfo, "ConflictException", 409)
    sandbox.streams.stream_ended(live.channel_arn)
    ivs.delete_channel(arn=live.channel_arn)
    with pytest.raises(ClientError) as excinfo:  # its sessions went with it
        ivs.list_stream_sessions(channelArn=live.channel_arn)
    ivs_error(excinfo, "ResourceNotFoundException", 404)


def test_put_metadata_reaches_the_packager(sandbox: Sandbox, ivs: Any, live: LiveStream) -> None:
    inserted: list[tuple[LiveStream, str]] = []
    sandbox.streams.metadata_listeners.append(lambda stream, metadata: inserted.append((stream, metadata)))
    response = ivs.put_metadata(channelArn=live.channel_arn, metadata='{"question": 1}')
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert inserted == [(live, '{"question": 1}')]


def test_put_metadata_is_at_most_1_kb(ivs: Any, live: LiveStream) -> None:
    ivs.put_metadata(channelArn=live.channel_arn, metadata="é" * (c.MAX_METADATA_BYTES // 2))
    with pytest.raises(ClientError) as excinfo:
        ivs.put_metadata(channelArn=live.channel_arn, metadata="é" * (c.MAX_METADATA_BYTES // 2) + "x")
    assert "***" in ivs_error(excinfo, "ValidationException", 400)["Error"]["Message"]  # sensitive: never echoed


def test_put_metadata_is_throttled_past_5_a_second_per_channel(sandbox: Sandbox, ivs: Any, live: LiveStream) -> None:
    ivs = sandbox.client("ivs", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    for i in range(c.QUOTA_TPS_PUT_METADATA_PER_CHANNEL):
        ivs.put_metadata(channelArn=live.channel_arn, metadata=str(i))
    with pytest.raises(ClientError) as excinfo:
        ivs.put_metadata(channelArn=live.channel_arn, metadata="one too many")
    response = ivs_error(excinfo, "ThrottlingException", 429)
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    other = ivs.create_channel()  # each channel has its own quota
    sandbox.streams.stream_started(other["streamKey"]["value"])
    ivs.put_metadata(channelArn=other["channel"]["arn"], metadata="fine")


def test_ended_sessions_survive_a_restart_and_open_ones_end(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Sandbox(state_path=path) as first:
        created = first.client("ivs").create_channel()
        arn, key = created["channel"]["arn"], created["streamKey"]["value"]
        ended = first.streams.stream_started(key, INGEST)
        first.streams.stream_ended(arn)
        still_live = first.streams.stream_started(key)
    with Sandbox(state_path=path) as second:
        ivs = second.client("ivs")
        assert second.streams.live(arn) is None
        sessions = ivs.list_stream_sessions(channelArn=arn)["streamSessions"]
        assert [s["streamId"] for s in sessions] == [still_live.stream_id, ended.stream_id]
        assert all("endTime" in s for s in sessions)
        assert ivs.get_stream_session(channelArn=arn, streamId=ended.stream_id)["streamSession"][
            "ingestConfiguration"] == INGEST
        assert second.streams.stream_started(key).channel_arn == arn
