"""With a state path, a restarted sandbox still has every room, logging configuration and tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox

LAMBDA = f"arn:aws:lambda:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:function:review"


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _snapshot(ivschat: Any, arns: list[str], config_arn: str) -> dict[str, Any]:
    """Everything a user can read back about the resources."""
    return {
        "rooms": [_body(ivschat.get_room(identifier=arn)) for arn in arns],
        "list": ivschat.list_rooms()["rooms"],
        "room_tags": [ivschat.list_tags_for_resource(resourceArn=arn)["tags"] for arn in arns],
        "config": _body(ivschat.get_logging_configuration(identifier=config_arn)),
        "configs": ivschat.list_logging_configurations()["loggingConfigurations"],
        "config_tags": ivschat.list_tags_for_resource(resourceArn=config_arn)["tags"],
    }


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Sandbox(state_path=path) as first:
        ivschat = first.client()
        config = ivschat.create_logging_configuration(name="logs", destinationConfiguration={
            "cloudWatchLogs": {"logGroupName": "/ivs/chat"}}, tags={"env": "test"})
        rooms = [ivschat.create_room(name=f"room-{i}") for i in range(4)]
        ivschat.update_room(identifier=rooms[0]["arn"], messageReviewHandler={"uri": LAMBDA},
                            loggingConfigurationIdentifiers=[config["arn"]], maximumMessageLength=42)
        ivschat.tag_resource(resourceArn=rooms[1]["arn"], tags={"with space": "yes", "n": "1"})
        ivschat.untag_resource(resourceArn=rooms[1]["arn"], tagKeys=["n"])
        ivschat.tag_resource(resourceArn=config["arn"], tags={"owner": "me"})
        ivschat.delete_room(identifier=rooms[3]["arn"])
        kept = [r["arn"] for r in rooms[:3]]
        before = _snapshot(ivschat, kept, config["arn"])

    with Sandbox(state_path=path) as second:
        ivschat = second.client()
        assert _snapshot(ivschat, kept, config["arn"]) == before
        assert [r["arn"] for r in before["list"]] == [kept[0], kept[2], kept[1]]
        assert before["rooms"][0]["maximumMessageLength"] == 42
        assert before["room_tags"][1] == {"with space": "yes"}
        assert before["config_tags"] == {"env": "test", "owner": "me"}
        with pytest.raises(ClientError) as excinfo:
            ivschat.get_room(identifier=rooms[3]["arn"])
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
        # The room still references the configuration, so the conflict survives too.
        with pytest.raises(ClientError) as excinfo:
            ivschat.delete_logging_configuration(identifier=config["arn"])
        assert excinfo.value.response["Error"]["Code"] == "ConflictException"
        # New work after the restart sorts ahead of the old rooms and persists in turn.
        newest = ivschat.create_room(name="after-restart")
        assert ivschat.list_rooms()["rooms"][0]["arn"] == newest["arn"]

    with Sandbox(state_path=path) as third:
        listed = third.client().list_rooms()["rooms"]
        assert [r["arn"] for r in listed] == [newest["arn"], kept[0], kept[2], kept[1]]


def test_quota_counts_restored_resources(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Sandbox(state_path=path, quota_rooms=1) as first:
        first.client().create_room()
    with Sandbox(state_path=path, quota_rooms=1) as second:
        with pytest.raises(ClientError) as excinfo:
            second.client().create_room()
        assert excinfo.value.response["Error"]["Code"] == "ServiceQuotaExceededException"


def test_without_a_state_path_nothing_survives() -> None:
    with Sandbox() as first:
        first.client().create_room()
    with Sandbox() as second:
        assert second.client().list_rooms()["rooms"] == []
