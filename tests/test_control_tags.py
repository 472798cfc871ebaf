"""Tag operations through real boto3: percent-encoded ARN paths and repeated ``tagKeys`` query params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c

S3 = {"s3": {"bucketName": "chat-logs"}}

CREATE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "room": lambda ivschat: ivschat.create_room(tags={"keep": "me"}),
    "logging-configuration": lambda ivschat: ivschat.create_logging_configuration(
        destinationConfiguration=S3, tags={"keep": "me"}),
}
GET: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "room": lambda ivschat, arn: ivschat.get_room(identifier=arn),
    "logging-configuration": lambda ivschat, arn: ivschat.get_logging_configuration(identifier=arn),
}


@pytest.fixture(params=list(CREATE))
def resource(request: pytest.FixtureRequest, ivschat: Any) -> dict[str, Any]:
    """A room or a logging configuration created with the tag ``keep=me``."""
    created = CREATE[request.param](ivschat)
    created["kind"] = request.param
    return created


def test_tag_list_untag_round_trip(ivschat: Any, resource: dict[str, Any]) -> None:
    sent: list[str] = []
    ivschat.meta.events.register("before-send.ivschat", lambda request, **_: sent.append(request.url))
    arn = resource["arn"]
    assert ivschat.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "me"}

    tagged = ivschat.tag_resource(resourceArn=arn, tags={"with space": "a b", "team": "chat", "empty": ""})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = ivschat.list_tags_for_resource(resourceArn=arn)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert listed["tags"] == {"keep": "me", "with space": "a b", "team": "chat", "empty": ""}

    untagged = ivschat.untag_resource(resourceArn=arn, tagKeys=["with space", "team", "never-set"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ivschat.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "me", "empty": ""}
    assert GET[resource["kind"]](ivschat, arn)["tags"] == {"keep": "me", "empty": ""}

    # What made the trip: the whole ARN percent-encoded in the path, keys repeated in the query.
    encoded = arn.replace(":", "%3A").replace("/", "%2F")
    tag_calls = sent[:-1]  # list, tag, list, untag, list; the last request was the Get
    assert len(tag_calls) == 5
    assert all(f"/tags/{encoded}" in url for url in tag_calls)
    assert tag_calls[3].endswith("?tagKeys=with%20space&tagKeys=team&tagKeys=never-set")


def test_tag_resource_overwrites_existing_values(ivschat: Any, resource: dict[str, Any]) -> None:
    ivschat.tag_resource(resourceArn=resource["arn"], tags={"keep": "changed"})
    assert ivschat.list_tags_for_resource(resourceArn=resource["arn"])["tags"] == {"keep": "changed"}


def test_room_tags_show_in_list_rooms(ivschat: Any) -> None:
    room = ivschat.create_room()
    ivschat.tag_resource(resourceArn=room["arn"], tags={"stage": "main"})
    assert ivschat.list_rooms()["rooms"][0]["tags"] == {"stage": "main"}


def test_tags_beyond_fifty_in_total_are_refused(ivschat: Any, resource: dict[str, Any]) -> None:
    ivschat.tag_resource(resourceArn=resource["arn"], tags={f"k{i}": "v" for i in range(49)})
    with pytest.raises(ClientError) as excinfo:
        ivschat.tag_resource(resourceArn=resource["arn"], tags={"one": "1", "two": "2"})
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["fieldList"][0]["name"] == "tags"
    assert len(ivschat.list_tags_for_resource(resourceArn=resource["arn"])["tags"]) == 50


MISSING = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:room/AbCdEfGhIjKl"


@pytest.mark.parametrize("call", [
    lambda ivschat: ivschat.list_tags_for_resource(resourceArn=MISSING),
    lambda ivschat: ivschat.tag_resource(resourceArn=MISSING, tags={"a": "b"}),
    lambda ivschat: ivschat.untag_resource(resourceArn=MISSING, tagKeys=["a"]),
    lambda ivschat: ivschat.list_tags_for_resource(resourceArn=MISSING.replace("room", "logging-configuration")),
], ids=["ListTagsForResource", "TagResource", "UntagResource", "ListTags-logging-configuration"])
def test_tag_operations_on_a_missing_arn_are_not_found(ivschat: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(ivschat)
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["resourceId"] == "AbCdEfGhIjKl"
    assert response["resourceType"] == "ROOM"


def test_tags_go_with_a_deleted_resource(ivschat: Any, room: dict[str, Any]) -> None:
    ivschat.tag_resource(resourceArn=room["arn"], tags={"a": "b"})
    ivschat.delete_room(identifier=room["arn"])
    with pytest.raises(ClientError) as excinfo:
        ivschat.list_tags_for_resource(resourceArn=room["arn"])
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
