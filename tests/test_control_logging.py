"""Logging configurations through real boto3: lifecycle, paging, quota, conflicts and references from rooms."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox

ID = re.compile(r"[A-Za-z0-9]{%d}" % c.ID_LENGTH)
S3 = {"s3": {"bucketName": "chat-logs"}}
MISSING = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:logging-configuration/AbCdEfGhIjKl"


def _error(excinfo: pytest.ExceptionInfo[ClientError], code: str, status: int) -> dict[str, Any]:
    """The parsed error response, after checking the name and status botocore saw."""
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return response


@pytest.mark.parametrize("destination", [
    S3,
    {"cloudWatchLogs": {"logGroupName": "/ivs/chat#logs"}},
    {"firehose": {"deliveryStreamName": "chat.stream_1"}},
], ids=["s3", "cloudWatchLogs", "firehose"])
def test_create_logging_configuration(ivschat: Any, destination: dict[str, Any]) -> None:
    config = ivschat.create_logging_configuration(name="logs", destinationConfiguration=destination)
    assert config["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert config["ResponseMetadata"]["RequestId"]
    assert ID.fullmatch(config["id"])
    assert config["arn"] == (f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}"
                             f":logging-configuration/{config['id']}")
    assert config["name"] == "logs"
    assert config["destinationConfiguration"] == destination
    # ACTIVE at once: the only value the model allows a CreateLoggingConfiguration answer (README, fidelity).
    assert [config["state"]] == ivschat.meta.service_model.shape_for("CreateLoggingConfigurationState").enum
    assert config["tags"] == {}
    assert isinstance(config["createTime"], datetime) and isinstance(config["updateTime"], datetime)
    fetched = ivschat.get_logging_configuration(identifier=config["arn"])
    assert {k: v for k, v in fetched.items() if k != "ResponseMetadata"} == \
        {k: v for k, v in config.items() if k != "ResponseMetadata"}


def test_update_logging_configuration_changes_only_supplied_fields(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(name="before", destinationConfiguration=S3, tags={"a": "b"})
    renamed = ivschat.update_logging_configuration(identifier=config["arn"], name="after")
    assert renamed["name"] == "after"
    assert renamed["destinationConfiguration"] == S3
    assert renamed["state"] == "ACTIVE"
    assert renamed["tags"] == {"a": "b"}
    firehose = {"firehose": {"deliveryStreamName": "stream"}}
    moved = ivschat.update_logging_configuration(identifier=config["arn"], destinationConfiguration=firehose)
    assert moved["name"] == "after"
    assert moved["destinationConfiguration"] == firehose
    assert moved["createTime"] == config["createTime"]
    assert moved["updateTime"] >= config["updateTime"]
    assert ivschat.get_logging_configuration(identifier=config["arn"])["destinationConfiguration"] == firehose


def test_delete_logging_configuration_answers_204(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    deleted = ivschat.delete_logging_configuration(identifier=config["arn"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert set(deleted) == {"ResponseMetadata"}
    assert ivschat.list_logging_configurations()["loggingConfigurations"] == []
    with pytest.raises(ClientError) as excinfo:
        ivschat.get_logging_configuration(identifier=config["arn"])
    _error(excinfo, "ResourceNotFoundException", 404)


@pytest.mark.parametrize("call", [
    lambda ivschat: ivschat.get_logging_configuration(identifier=MISSING),
    lambda ivschat: ivschat.update_logging_configuration(identifier=MISSING, name="x"),
    lambda ivschat: ivschat.delete_logging_configuration(identifier=MISSING),
    lambda ivschat: ivschat.create_room(loggingConfigurationIdentifiers=[MISSING]),
], ids=["Get", "Update", "Delete", "CreateRoom"])
def test_missing_logging_configuration_is_not_found(ivschat: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(ivschat)
    response = _error(excinfo, "ResourceNotFoundException", 404)
    assert response["resourceId"] == "AbCdEfGhIjKl"
    assert response["resourceType"] == "ROOM"  # the model's only ResourceType value
    assert ivschat.list_rooms()["rooms"] == []


def test_update_room_with_missing_logging_configuration_is_not_found(ivschat: Any,
                                                                     room: dict[str, Any]) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    with pytest.raises(ClientError) as excinfo:
        ivschat.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[config["arn"], MISSING])
    assert _error(excinfo, "ResourceNotFoundException", 404)["resourceId"] == "AbCdEfGhIjKl"
    assert "loggingConfigurationIdentifiers" not in ivschat.get_room(identifier=room["arn"])


def test_logging_configuration_in_use_cannot_be_deleted(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    room = ivschat.create_room(loggingConfigurationIdentifiers=[config["arn"]])
    with pytest.raises(ClientError) as excinfo:
        ivschat.delete_logging_configuration(identifier=config["arn"])
    response = _error(excinfo, "ConflictException", 409)
    assert response["resourceId"] == config["id"]
    assert response["resourceType"] == "ROOM"
    assert room["id"] in response["Error"]["Message"]
    ivschat.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[])
    ivschat.delete_logging_configuration(identifier=config["arn"])
    assert ivschat.list_logging_configurations()["loggingConfigurations"] == []


def test_update_room_replaces_the_logging_configuration_list(ivschat: Any) -> None:
    first, second = (ivschat.create_logging_configuration(destinationConfiguration=S3) for _ in range(2))
    room = ivschat.create_room(loggingConfigurationIdentifiers=[first["arn"]])
    updated = ivschat.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[second["arn"]])
    assert updated["loggingConfigurationIdentifiers"] == [second["arn"]]
    ivschat.delete_logging_configuration(identifier=first["arn"])


def test_eleventh_logging_configuration_exceeds_the_quota(ivschat: Any) -> None:
    for _ in range(c.QUOTA_LOGGING_CONFIGURATIONS):
        ivschat.create_logging_configuration(destinationConfiguration=S3)
    with pytest.raises(ClientError) as excinfo:
        ivschat.create_logging_configuration(destinationConfiguration=S3)
    response = _error(excinfo, "ServiceQuotaExceededException", 402)
    assert response["limit"] == c.QUOTA_LOGGING_CONFIGURATIONS == 10
    assert response["resourceType"] == "ROOM"
    assert response["resourceId"]
    assert len(ivschat.list_logging_configurations()["loggingConfigurations"]) == 10


def test_logging_configuration_quota_is_a_setting() -> None:
    with Sandbox(quota_logging_configurations=1) as sandbox:
        ivschat = sandbox.client()
        config = ivschat.create_logging_configuration(destinationConfiguration=S3)
        with pytest.raises(ClientError) as excinfo:
            ivschat.create_logging_configuration(destinationConfiguration=S3)
        assert _error(excinfo, "ServiceQuotaExceededException", 402)["limit"] == 1
        ivschat.delete_logging_configuration(identifier=config["arn"])
        ivschat.create_logging_configuration(destinationConfiguration=S3)


def test_list_logging_configurations_is_empty_list_not_missing(ivschat: Any) -> None:
    listed = ivschat.list_logging_configurations()
    assert listed["loggingConfigurations"] == []
    assert "nextToken" not in listed


@pytest.mark.parametrize("page_size", [1, 2, 5])
def test_list_logging_configurations_pages(ivschat: Any, page_size: int) -> None:
    created = [ivschat.create_logging_configuration(name=f"c{i}", destinationConfiguration=S3)
               for i in range(5)]
    seen: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = ivschat.list_logging_configurations(maxResults=page_size, **token)
        assert 0 < len(page["loggingConfigurations"]) <= page_size
        seen += page["loggingConfigurations"]
        if "nextToken" not in page:
            break
        token = {"nextToken": page["nextToken"]}
    assert [s["arn"] for s in seen] == [x["arn"] for x in reversed(created)]
    assert seen[0]["name"] == "c4"
    assert seen[0]["state"] == "ACTIVE"
    assert seen[0]["destinationConfiguration"] == S3


def test_list_logging_configurations_invalid_next_token(ivschat: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        ivschat.list_logging_configurations(nextToken="not-a-token")
    response = _error(excinfo, "ValidationException", 400)
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert response["fieldList"][0]["name"] == "nextToken"
