"""The ``ivs`` control plane through real boto3: channels, stream keys, tags, their errors, and routing
beside ``ivschat`` on the same port."""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from ivsutil import MISSING_CHANNEL, PREFIX, ivs_error

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox

CHANNEL_ARN = re.compile(rf"{PREFIX}:channel/([A-Za-z0-9]{{12}})")
KEY_ARN = re.compile(rf"{PREFIX}:stream-key/[A-Za-z0-9]{{12}}")
KEY_VALUE = re.compile(rf"sk_{c.SANDBOX_REGION}_[A-Za-z0-9]{{12}}_[A-Za-z0-9]{{12}}")
MISSING_KEY = f"{PREFIX}:stream-key/AbCdEfGhIjKl"


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@pytest.fixture
def created(ivs: Any) -> dict[str, Any]:
    return ivs.create_channel(name="test-channel")


# -- channels ---------------------------------------------------------------------------------

def test_create_channel_applies_the_service_defaults(sandbox: Sandbox, ivs: Any) -> None:
    created = ivs.create_channel()
    channel, key = created["channel"], created["streamKey"]
    matched = CHANNEL_ARN.fullmatch(channel["arn"])
    assert matched is not None
    channel_id = matched[1]
    assert {k: v for k, v in channel.items() if k not in ("arn", "ingestEndpoint", "playbackUrl", "srt")} == {
        "name": "", "latencyMode": "LOW", "type": "STANDARD", "authorized": False, "insecureIngest": False,
        "preset": "", "recordingConfigurationArn": "", "playbackRestrictionPolicyArn": "", "containerFormat": "TS",
        "multitrackInputConfiguration": {"enabled": False, "maximumResolution": "FULL_HD", "policy": "ALLOW"},
        "tags": {},
    }
    # AWS gives a host (<id>.global-contribute.live-video.net, RTMPS on 443); the sandbox's is its own host
    # and RTMP port, so rtmp://{ingestEndpoint}/app/ is the encoder's server.
    assert channel["ingestEndpoint"] == sandbox.ingest_endpoint() == f"127.0.0.1:{sandbox.ingest_port}"
    assert sandbox.rtmp_url == f"rtmp://{channel['ingestEndpoint']}/app/"
    assert channel["playbackUrl"] == f"{sandbox.control_endpoint}/ivs/{channel_id}/live.m3u8"
    assert channel["srt"]["endpoint"] == "127.0.0.1"
    assert re.fullmatch(r"[A-Za-z0-9]{68}", channel["srt"]["passphrase"])
    assert KEY_ARN.fullmatch(key["arn"]) and KEY_VALUE.fullmatch(key["value"])
    assert (key["channelArn"], key["tags"]) == (channel["arn"], {})
    assert _body(ivs.get_channel(arn=channel["arn"])) == {"channel": channel}


def test_create_channel_keeps_every_supplied_field(ivs: Any) -> None:
    channel = ivs.create_channel(name="my_channel-1", latencyMode="NORMAL", type="ADVANCED_HD", authorized=True,
                                 insecureIngest=True, preset="CONSTRAINED_BANDWIDTH_DELIVERY",
                                 tags={"team": "video"})["channel"]
    expected = {"name": "my_channel-1", "latencyMode": "NORMAL", "type": "ADVANCED_HD", "authorized": True,
                "insecureIngest": True, "preset": "CONSTRAINED_BANDWIDTH_DELIVERY", "tags": {"team": "video"}}
    for response in (channel, ivs.get_channel(arn=channel["arn"])["channel"]):
        assert {k: response[k] for k in expected} == expected


@pytest.mark.parametrize("channel_type", ["ADVANCED_SD", "ADVANCED_HD"])
def test_advanced_channels_get_the_default_preset(ivs: Any, channel_type: str) -> None:
    assert ivs.create_channel(type=channel_type)["channel"]["preset"] == "HIGHER_BANDWIDTH_DELIVERY"


def test_multitrack_input_needs_a_standard_fragmented_mp4_channel(ivs: Any) -> None:
    multitrack = {"enabled": True, "policy": "REQUIRE", "maximumResolution": "HD"}
    channel = ivs.create_channel(containerFormat="FRAGMENTED_MP4", multitrackInputConfiguration=multitrack)["channel"]
    assert channel["multitrackInputConfiguration"] == multitrack
    for refused in ({"multitrackInputConfiguration": multitrack},
                    {"multitrackInputConfiguration": multitrack, "containerFormat": "FRAGMENTED_MP4", "type": "BASIC"},
                    {"multitrackInputConfiguration": {"enabled": True}, "containerFormat": "FRAGMENTED_MP4"}):
        with pytest.raises(ClientError) as excinfo:
            ivs.create_channel(**refused)
        ivs_error(excinfo, "ValidationException", 400)


@pytest.mark.parametrize(("request_members", "member"), [
    ({"name": "has spaces"}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"latencyMode": "FAST"}, "latencyMode"),
    ({"type": "PREMIUM"}, "type"),
    ({"preset": "HIGHER_BANDWIDTH_DELIVERY"}, "preset"),  # only ADVANCED_* channels have a preset
    ({"tags": {"a#b": "x"}}, "tags"),
    ({"recordingConfigurationArn": "arn:aws:ivs:us-east-1:123456789012:channel/AbCdEfGhIjKl"}, "recording"),
])
def test_create_channel_validates_what_boto3_lets_through(ivs: Any, request_members: dict[str, Any],
                                                          member: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        ivs.create_channel(**request_members)
    assert member in ivs_error(excinfo, "ValidationException", 400)["Error"]["Message"]


@pytest.mark.parametrize("member", ["recordingConfigurationArn", "playbackRestrictionPolicyArn"])
def test_a_channel_naming_a_resource_the_sandbox_has_not_is_not_found(ivs: Any, member: str) -> None:
    kind = "recording-configuration" if member.startswith("recording") else "playback-restriction-policy"
    with pytest.raises(ClientError) as excinfo:
        ivs.create_channel(**{member: f"{PREFIX}:{kind}/AbCdEfGhIjKl"})
    ivs_error(excinfo, "ResourceNotFoundException", 404)
    assert ivs.list_channels()["channels"] == []


def test_unicode_tags_follow_the_models_unicode_classes(ivs: Any) -> None:
    tags = {"ключ": "значение", "数字": "١٢٣", "with space": "a/b=c+d@e"}
    assert ivs.create_channel(tags=tags)["channel"]["tags"] == tags


def test_update_channel_changes_only_what_it_is_given(ivs: Any, created: dict[str, Any]) -> None:
    arn = created["channel"]["arn"]
    updated = ivs.update_channel(arn=arn, latencyMode="NORMAL", type="ADVANCED_SD")["channel"]
    assert (updated["name"], updated["latencyMode"], updated["type"]) == ("test-channel", "NORMAL", "ADVANCED_SD")
    assert updated["preset"] == "HIGHER_BANDWIDTH_DELIVERY"
    assert ivs.update_channel(arn=arn, type="BASIC")["channel"]["preset"] == ""  # no preset for BASIC
    assert _body(ivs.get_channel(arn=arn))["channel"]["type"] == "BASIC"
    with pytest.raises(ClientError) as excinfo:
        ivs.update_channel(arn=MISSING_CHANNEL, name="x")
    ivs_error(excinfo, "ResourceNotFoundException", 404)


def test_delete_channel_deletes_its_stream_key(ivs: Any, created: dict[str, Any]) -> None:
    arn, key = created["channel"]["arn"], created["streamKey"]["arn"]
    response = ivs.delete_channel(arn=arn)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (lambda: ivs.get_channel(arn=arn), lambda: ivs.get_stream_key(arn=key),
                 lambda: ivs.delete_channel(arn=arn)):
        with pytest.raises(ClientError) as excinfo:
            call()
        ivs_error(excinfo, "ResourceNotFoundException", 404)


def test_batch_get_channel_reports_each_missing_arn(ivs: Any, created: dict[str, Any]) -> None:
    arn = created["channel"]["arn"]
    other_account = "arn:aws:ivs:us-east-1:210987654321:channel/AbCdEfGhIjKl"
    response = ivs.batch_get_channel(arns=[arn, MISSING_CHANNEL, other_account])
    assert response["channels"] == [created["channel"]]
    assert [(e["arn"], e["code"]) for e in response["errors"]] == [
        (MISSING_CHANNEL, "ResourceNotFoundException"), (other_account, "AccessDeniedException")]


def test_another_accounts_channel_is_access_denied(ivs: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        ivs.get_channel(arn="arn:aws:ivs:us-east-1:210987654321:channel/AbCdEfGhIjKl")
    ivs_error(excinfo, "AccessDeniedException", 403)


def test_list_channels_filters_and_pages_newest_first(ivs: Any) -> None:
    arns = [ivs.create_channel(name=f"channel-{i}")["channel"]["arn"] for i in range(3)]
    listed = ivs.list_channels()["channels"]
    assert [ch["arn"] for ch in listed] == arns[::-1]
    assert set(listed[0]) == {"arn", "name", "latencyMode", "authorized", "recordingConfigurationArn", "tags",
                              "insecureIngest", "type", "preset", "playbackRestrictionPolicyArn"}
    assert [ch["arn"] for ch in ivs.list_channels(filterByName="channel-1")["channels"]] == [arns[1]]
    first = ivs.list_channels(maxResults=2)
    rest = ivs.list_channels(maxResults=2, nextToken=first["nextToken"])
    assert [ch["arn"] for ch in first["channels"] + rest["channels"]] == arns[::-1] and "nextToken" not in rest
    with pytest.raises(ClientError) as excinfo:
        ivs.list_channels(filterByName="channel-1", filterByRecordingConfigurationArn="")
    ivs_error(excinfo, "ConflictException", 409)


def test_the_channel_quota_is_a_setting() -> None:
    with Sandbox(quota_channels=1) as sandbox:
        ivs = sandbox.client("ivs")
        ivs.create_channel()
        with pytest.raises(ClientError) as excinfo:
            ivs.create_channel()
        ivs_error(excinfo, "ServiceQuotaExceededException", 402)


# -- stream keys ------------------------------------------------------------------------------

def test_a_channel_has_one_stream_key_until_it_is_deleted(ivs: Any, created: dict[str, Any]) -> None:
    arn, key = created["channel"]["arn"], created["streamKey"]
    assert _body(ivs.get_stream_key(arn=key["arn"])) == {"streamKey": key}
    assert ivs.list_stream_keys(channelArn=arn)["streamKeys"] == [
        {"arn": key["arn"], "channelArn": arn, "tags": {}}]
    with pytest.raises(ClientError) as excinfo:
        ivs.create_stream_key(channelArn=arn)
    ivs_error(excinfo, "ServiceQuotaExceededException", 402)

    assert ivs.delete_stream_key(arn=key["arn"])["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert ivs.list_stream_keys(channelArn=arn)["streamKeys"] == []
    fresh = ivs.create_stream_key(channelArn=arn, tags={"rotated": "yes"})["streamKey"]
    assert KEY_VALUE.fullmatch(fresh["value"]) and fresh["value"] != key["value"]
    assert (fresh["channelArn"], fresh["tags"]) == (arn, {"rotated": "yes"})


def test_batch_get_stream_key_reports_each_missing_arn(ivs: Any, created: dict[str, Any]) -> None:
    key = created["streamKey"]
    response = ivs.batch_get_stream_key(arns=[key["arn"], MISSING_KEY])
    assert response["streamKeys"] == [key]
    assert [(e["arn"], e["code"]) for e in response["errors"]] == [(MISSING_KEY, "ResourceNotFoundException")]


@pytest.mark.parametrize("call", [
    lambda ivs: ivs.create_stream_key(channelArn=MISSING_CHANNEL),
    lambda ivs: ivs.list_stream_keys(channelArn=MISSING_CHANNEL),
    lambda ivs: ivs.get_stream_key(arn=MISSING_KEY),
    lambda ivs: ivs.delete_stream_key(arn=MISSING_KEY),
], ids=["create", "list", "get", "delete"])
def test_stream_keys_of_missing_resources_are_not_found(ivs: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(ivs)
    ivs_error(excinfo, "ResourceNotFoundException", 404)


# -- tags -------------------------------------------------------------------------------------

def test_channels_and_stream_keys_are_tagged(ivs: Any, created: dict[str, Any]) -> None:
    for arn in (created["channel"]["arn"], created["streamKey"]["arn"]):
        ivs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
        ivs.untag_resource(resourceArn=arn, tagKeys=["a"])
        assert ivs.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    assert ivs.get_channel(arn=created["channel"]["arn"])["channel"]["tags"] == {"b": "2"}


def test_tag_errors(ivs: Any, created: dict[str, Any]) -> None:
    arn = created["channel"]["arn"]
    with pytest.raises(ClientError) as excinfo:
        ivs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(51)})
    ivs_error(excinfo, "ValidationException", 400)
    with pytest.raises(ClientError) as excinfo:
        ivs.list_tags_for_resource(resourceArn=MISSING_CHANNEL)
    ivs_error(excinfo, "ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:  # a chat room is not an ivs resource
        ivs.list_tags_for_resource(resourceArn=f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:room/x")
    ivs_error(excinfo, "ValidationException", 400)


# -- the rest of the API, and the port it shares ----------------------------------------------

@pytest.mark.parametrize("call", [
    lambda ivs: ivs.create_recording_configuration(destinationConfiguration={"s3": {"bucketName": "videos"}}),
    lambda ivs: ivs.list_playback_key_pairs(),
], ids=["CreateRecordingConfiguration", "ListPlaybackKeyPairs"])
def test_operations_the_sandbox_does_not_offer_say_so(ivs: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(ivs)
    response = excinfo.value.response  # not a modeled error: botocore parses only its name and message
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501)
    assert "not available in the ivs-widgets sandbox" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_both_apis_answer_on_one_port_with_their_own_tags(sandbox: Sandbox, ivs: Any, ivschat: Any,
                                                          created: dict[str, Any]) -> None:
    assert sandbox.environment()["AWS_ENDPOINT_URL_IVS"] == sandbox.environment()["AWS_ENDPOINT_URL_IVSCHAT"]
    room = ivschat.create_room(tags={"api": "ivschat"})
    ivs.tag_resource(resourceArn=created["channel"]["arn"], tags={"api": "ivs"})
    assert ivschat.list_tags_for_resource(resourceArn=room["arn"])["tags"] == {"api": "ivschat"}
    assert ivs.list_tags_for_resource(resourceArn=created["channel"]["arn"])["tags"] == {"api": "ivs"}


def _send(sandbox: Sandbox, path: str, body: dict[str, Any], service: str | None) -> tuple[int, dict[str, Any]]:
    """A raw POST, SigV4-signed for ``service`` (unsigned when None)."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=sandbox.control_endpoint + path, data=data,
                         headers={"Content-Type": "application/json"})
    if service is not None:
        credentials = Credentials(sandbox.config.access_key_id, sandbox.config.secret_access_key)
        SigV4Auth(credentials, service, sandbox.config.region).add_auth(request)
    endpoint = urlsplit(sandbox.control_endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
    try:
        connection.request("POST", path, body=data, headers=dict(request.headers.items()))
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_requests_go_to_the_api_their_signature_names(sandbox: Sandbox) -> None:
    assert _send(sandbox, "/CreateChannel", {}, "ivs")[0] == 200
    status, body = _send(sandbox, "/CreateChannel", {}, "ivschat")  # the ivschat API has no such operation
    assert (status, body["__type"], body["reason"]) == (400, "ValidationException", "UNKNOWN_OPERATION")
    status, body = _send(sandbox, "/CreateChannel", {}, None)  # unsigned: the API whose path it is refuses it
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    assert body["exceptionMessage"] == body["message"]
    status, body = _send(sandbox, "/CreateChannel", {}, "s3")
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert "'ivs'" in body["message"]


def test_channels_and_keys_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Sandbox(state_path=path) as first:
        ivs = first.client("ivs")
        kept = ivs.create_channel(name="kept", tags={"topic": "restart"})
        gone = ivs.create_channel(name="gone")
        ivs.delete_channel(arn=gone["channel"]["arn"])
        before = ivs.get_channel(arn=kept["channel"]["arn"])["channel"]
    with Sandbox(state_path=path) as second:
        ivs = second.client("ivs")
        after = ivs.get_channel(arn=kept["channel"]["arn"])["channel"]
        assert after == {**before, "playbackUrl": second.playback_url(after["arn"].rsplit("/", 1)[1]),
                         "ingestEndpoint": second.ingest_endpoint()}
        assert _body(ivs.get_stream_key(arn=kept["streamKey"]["arn"])) == {"streamKey": kept["streamKey"]}
        assert [ch["arn"] for ch in ivs.list_channels()["channels"]] == [kept["channel"]["arn"]]


def test_a_workshop_reset_keeps_the_channels(sandbox: Sandbox, ivs: Any, created: dict[str, Any]) -> None:
    sandbox.workshop.reset()
    assert ivs.get_channel(arn=created["channel"]["arn"])["channel"]["name"] == "test-channel"
