"""Rooms through real boto3: shapes, defaults, updates, deletes, ListRooms order/paging/filters, quota."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox import Sandbox

ID = re.compile(r"[A-Za-z0-9]{%d}" % c.ID_LENGTH)
LAMBDA = f"arn:aws:lambda:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:function:review"
OTHER_LAMBDA = f"arn:aws:lambda:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:function:other"
S3 = {"s3": {"bucketName": "chat-logs"}}


def _error(excinfo: pytest.ExceptionInfo[ClientError], code: str, status: int) -> dict[str, Any]:
    """The parsed error response, after checking the name and status botocore saw."""
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return response


def _arns(ivschat: Any, **filters: Any) -> list[str]:
    return [r["arn"] for r in ivschat.list_rooms(**filters)["rooms"]]


def test_create_room_applies_the_service_defaults(ivschat: Any) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    room = ivschat.create_room()
    meta = room["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta["RequestId"] and meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert ID.fullmatch(room["id"])
    assert room["arn"] == f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:room/{room['id']}"
    assert room["name"] == ""
    assert room["maximumMessageLength"] == c.DEFAULT_MAXIMUM_MESSAGE_LENGTH == 500
    assert room["maximumMessageRatePerSecond"] == c.DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND == 10
    assert room["tags"] == {}
    assert "messageReviewHandler" not in room
    assert "loggingConfigurationIdentifiers" not in room
    assert isinstance(room["createTime"], datetime) and room["createTime"].tzinfo is not None
    assert room["createTime"] == room["updateTime"]
    assert before <= room["createTime"] <= datetime.now(UTC)


#: Documented route and success status of each of the 17 operations.
ROUTES = {
    "CreateLoggingConfiguration": ("POST", "/CreateLoggingConfiguration", 200),
    "GetLoggingConfiguration": ("POST", "/GetLoggingConfiguration", 200),
    "UpdateLoggingConfiguration": ("POST", "/UpdateLoggingConfiguration", 200),
    "ListLoggingConfigurations": ("POST", "/ListLoggingConfigurations", 200),
    "DeleteLoggingConfiguration": ("POST", "/DeleteLoggingConfiguration", 204),
    "CreateRoom": ("POST", "/CreateRoom", 200),
    "GetRoom": ("POST", "/GetRoom", 200),
    "UpdateRoom": ("POST", "/UpdateRoom", 200),
    "ListRooms": ("POST", "/ListRooms", 200),
    "DeleteRoom": ("POST", "/DeleteRoom", 204),
    "CreateChatToken": ("POST", "/CreateChatToken", 200),
    "SendEvent": ("POST", "/SendEvent", 200),
    "DeleteMessage": ("POST", "/DeleteMessage", 200),
    "DisconnectUser": ("POST", "/DisconnectUser", 200),
    "TagResource": ("POST", "/tags/{arn}", 200),
    "ListTagsForResource": ("GET", "/tags/{arn}", 200),
    "UntagResource": ("DELETE", "/tags/{arn}", 200),
}


def test_all_operations_answer_at_their_documented_routes(ivschat: Any) -> None:
    routes: dict[str, tuple[str, str, int]] = {}
    request_ids: set[str] = set()

    def sent(request: Any, event_name: str, **_: Any) -> None:
        routes[event_name.rsplit(".", 1)[1]] = (request.method, urlsplit(request.url).path, 0)

    def answered(http_response: Any, model: Any, **_: Any) -> None:
        method, path, _status = routes[model.name]
        routes[model.name] = (method, path, http_response.status_code)
        request_ids.add(http_response.headers["x-amzn-RequestId"])

    ivschat.meta.events.register("before-send.ivschat", sent)
    ivschat.meta.events.register("after-call.ivschat", answered)
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)["arn"]
    ivschat.get_logging_configuration(identifier=config)
    ivschat.update_logging_configuration(identifier=config, name="renamed")
    ivschat.list_logging_configurations()
    room = ivschat.create_room(loggingConfigurationIdentifiers=[config])["arn"]
    ivschat.get_room(identifier=room)
    ivschat.update_room(identifier=room, name="renamed")
    ivschat.list_rooms()
    ivschat.create_chat_token(roomIdentifier=room, userId="u")
    ivschat.send_event(roomIdentifier=room, eventName="e")
    ivschat.delete_message(roomIdentifier=room, id="AbCdEfGhIjKl")
    ivschat.disconnect_user(roomIdentifier=room, userId="u")
    ivschat.tag_resource(resourceArn=room, tags={"a": "b"})
    ivschat.list_tags_for_resource(resourceArn=room)
    ivschat.untag_resource(resourceArn=room, tagKeys=["a"])
    ivschat.delete_room(identifier=room)
    ivschat.delete_logging_configuration(identifier=config)

    assert set(ROUTES) == set(ivschat.meta.service_model.operation_names)
    assert len(request_ids) == len(ROUTES) == 17
    encoded_arn = quote(room, safe="")  # the whole ARN, ':' and '/' included
    for name, (method, path, status) in ROUTES.items():
        assert routes[name] == (method, path.format(arn=encoded_arn), status), name


def test_every_request_gets_its_own_request_id(ivschat: Any, room: dict[str, Any]) -> None:
    seen = {ivschat.get_room(identifier=room["arn"])["ResponseMetadata"]["RequestId"] for _ in range(3)}
    assert len(seen) == 3


def test_arns_use_the_configured_account_and_region() -> None:
    with Sandbox(account_id="210987654321", region="eu-west-2") as sandbox:
        ivschat = sandbox.client()
        room = ivschat.create_room()
        config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    assert room["arn"] == f"arn:aws:ivschat:eu-west-2:210987654321:room/{room['id']}"
    assert config["arn"] == f"arn:aws:ivschat:eu-west-2:210987654321:logging-configuration/{config['id']}"


def test_create_room_keeps_every_supplied_field(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    room = ivschat.create_room(
        name="my_room-1", maximumMessageLength=1, maximumMessageRatePerSecond=100,
        messageReviewHandler={"uri": LAMBDA, "fallbackResult": "DENY"},
        tags={"team": "chat"}, loggingConfigurationIdentifiers=[config["arn"]])
    fetched = ivschat.get_room(identifier=room["arn"])
    for response in (room, fetched):
        assert response["name"] == "my_room-1"
        assert response["maximumMessageLength"] == 1
        assert response["maximumMessageRatePerSecond"] == 100
        assert response["messageReviewHandler"] == {"uri": LAMBDA, "fallbackResult": "DENY"}
        assert response["tags"] == {"team": "chat"}
        assert response["loggingConfigurationIdentifiers"] == [config["arn"]]


def test_review_handler_falls_back_to_allow_by_default(ivschat: Any) -> None:
    room = ivschat.create_room(messageReviewHandler={"uri": LAMBDA})
    assert room["messageReviewHandler"] == {"uri": LAMBDA, "fallbackResult": c.DEFAULT_FALLBACK_RESULT}
    assert c.DEFAULT_FALLBACK_RESULT == "ALLOW"


def test_update_room_changes_only_supplied_fields(ivschat: Any) -> None:
    room = ivschat.create_room(name="before", maximumMessageLength=200,
                               messageReviewHandler={"uri": LAMBDA})
    updated = ivschat.update_room(identifier=room["arn"], name="after")
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["name"] == "after"
    assert updated["maximumMessageLength"] == 200
    assert updated["maximumMessageRatePerSecond"] == 10
    assert updated["messageReviewHandler"]["uri"] == LAMBDA
    assert updated["createTime"] == room["createTime"]
    assert updated["updateTime"] >= room["updateTime"]
    assert ivschat.get_room(identifier=room["arn"])["name"] == "after"


def test_update_room_with_empty_handler_uri_detaches_the_lambda_and_keeps_the_handler(ivschat: Any) -> None:
    """What the Terraform provider's TestAccIVSChatRoom_update_remove_messageReviewHandler_uri expects."""
    room = ivschat.create_room(messageReviewHandler={"uri": LAMBDA, "fallbackResult": "DENY"})
    updated = ivschat.update_room(identifier=room["arn"], messageReviewHandler={"uri": ""})
    detached = {"uri": "", "fallbackResult": "ALLOW"}
    assert updated["messageReviewHandler"] == detached
    assert ivschat.get_room(identifier=room["arn"])["messageReviewHandler"] == detached
    assert ivschat.list_rooms()["rooms"][0]["messageReviewHandler"] == detached
    assert _arns(ivschat, messageReviewHandlerUri=LAMBDA) == []


@pytest.mark.parametrize("handler", [{"uri": ""}, {"uri": "", "fallbackResult": "DENY"}, {"fallbackResult": "DENY"}],
                         ids=["empty-uri", "empty-uri-deny", "fallback-only"])
def test_create_room_keeps_a_handler_without_a_lambda(ivschat: Any, handler: dict[str, str]) -> None:
    room = ivschat.create_room(messageReviewHandler=handler)
    kept = {**handler, "fallbackResult": handler.get("fallbackResult", "ALLOW")}
    assert room["messageReviewHandler"] == kept
    assert ivschat.get_room(identifier=room["arn"])["messageReviewHandler"] == kept
    assert _arns(ivschat, messageReviewHandlerUri=LAMBDA) == []


def test_update_room_replaces_the_handler(ivschat: Any) -> None:
    room = ivschat.create_room(messageReviewHandler={"uri": LAMBDA, "fallbackResult": "DENY"})
    updated = ivschat.update_room(identifier=room["arn"], messageReviewHandler={"uri": OTHER_LAMBDA})
    assert updated["messageReviewHandler"] == {"uri": OTHER_LAMBDA, "fallbackResult": "ALLOW"}


def test_delete_room_answers_204_and_the_room_is_gone(ivschat: Any, room: dict[str, Any]) -> None:
    deleted = ivschat.delete_room(identifier=room["arn"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert deleted["ResponseMetadata"]["RequestId"]
    assert set(deleted) == {"ResponseMetadata"}
    assert _arns(ivschat) == []
    with pytest.raises(ClientError) as excinfo:
        ivschat.get_room(identifier=room["arn"])
    _error(excinfo, "ResourceNotFoundException", 404)


@pytest.mark.parametrize("call", [
    lambda ivschat, arn: ivschat.get_room(identifier=arn),
    lambda ivschat, arn: ivschat.update_room(identifier=arn, name="x"),
    lambda ivschat, arn: ivschat.delete_room(identifier=arn),
    lambda ivschat, arn: ivschat.create_chat_token(roomIdentifier=arn, userId="u"),
], ids=["GetRoom", "UpdateRoom", "DeleteRoom", "CreateChatToken"])
def test_missing_room_is_resource_not_found(ivschat: Any, call: Any) -> None:
    missing = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:room/AbCdEfGhIjKl"
    with pytest.raises(ClientError) as excinfo:
        call(ivschat, missing)
    response = _error(excinfo, "ResourceNotFoundException", 404)
    assert response["resourceId"] == "AbCdEfGhIjKl"
    assert response["resourceType"] == "ROOM"
    assert response["Error"]["Message"]


def test_list_rooms_is_empty_list_not_missing(ivschat: Any) -> None:
    listed = ivschat.list_rooms()
    assert listed["rooms"] == []
    assert "nextToken" not in listed


def test_list_rooms_newest_updated_first(ivschat: Any) -> None:
    first, second, third = (ivschat.create_room(name=n) for n in ("first", "second", "third"))
    assert _arns(ivschat) == [third["arn"], second["arn"], first["arn"]]
    ivschat.update_room(identifier=first["arn"], maximumMessageLength=5)
    assert _arns(ivschat) == [first["arn"], third["arn"], second["arn"]]
    summaries = ivschat.list_rooms()["rooms"]
    times = [r["updateTime"] for r in summaries]
    assert times == sorted(times, reverse=True)


def test_tagging_does_not_reorder_list_rooms(ivschat: Any) -> None:
    older, newer = ivschat.create_room(name="older"), ivschat.create_room(name="newer")
    ivschat.tag_resource(resourceArn=older["arn"], tags={"k": "v"})
    ivschat.untag_resource(resourceArn=older["arn"], tagKeys=["k"])
    assert _arns(ivschat) == [newer["arn"], older["arn"]]
    assert ivschat.get_room(identifier=older["arn"])["updateTime"] == older["updateTime"]


def test_list_rooms_summaries_have_the_summary_fields(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    room = ivschat.create_room(name="summary", messageReviewHandler={"uri": LAMBDA}, tags={"a": "b"},
                               loggingConfigurationIdentifiers=[config["arn"]])
    (summary,) = ivschat.list_rooms()["rooms"]
    assert summary == {key: room[key] for key in ("arn", "id", "name", "messageReviewHandler", "createTime",
                                                   "updateTime", "tags", "loggingConfigurationIdentifiers")}


def test_a_room_without_logging_omits_the_member_everywhere(ivschat: Any) -> None:
    """As real CreateRoom outputs do: code written against AWS reads it with ``.get``, and so must ours."""
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    room = ivschat.create_room(loggingConfigurationIdentifiers=[config["arn"]])
    detached = ivschat.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[])
    listed = ivschat.list_rooms()["rooms"]
    answers = [ivschat.create_room(), detached, ivschat.get_room(identifier=room["arn"]), *listed]
    assert len(listed) == 1
    assert ["loggingConfigurationIdentifiers" in answer for answer in answers] == [False] * 4


@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_list_rooms_pages_cover_every_room_once(ivschat: Any, page_size: int) -> None:
    created = [ivschat.create_room(name=f"r{i}")["arn"] for i in range(7)]
    seen: list[str] = []
    token: dict[str, str] = {}
    pages = 0
    while True:
        page = ivschat.list_rooms(maxResults=page_size, **token)
        pages += 1
        assert 0 < len(page["rooms"]) <= page_size
        seen += [r["arn"] for r in page["rooms"]]
        if "nextToken" not in page:
            break
        token = {"nextToken": page["nextToken"]}
    assert seen == created[::-1]
    assert pages == -(-len(created) // page_size)


def test_list_rooms_paging_survives_a_deleted_cursor_room(ivschat: Any) -> None:
    arns = [ivschat.create_room()["arn"] for _ in range(4)][::-1]
    page = ivschat.list_rooms(maxResults=2)
    assert [r["arn"] for r in page["rooms"]] == arns[:2]
    ivschat.delete_room(identifier=arns[1])
    rest = ivschat.list_rooms(maxResults=2, nextToken=page["nextToken"])
    assert [r["arn"] for r in rest["rooms"]] == arns[2:]
    assert "nextToken" not in rest


def test_list_rooms_filters(ivschat: Any) -> None:
    config = ivschat.create_logging_configuration(destinationConfiguration=S3)
    plain = ivschat.create_room(name="lobby")
    reviewed = ivschat.create_room(name="lobby", messageReviewHandler={"uri": LAMBDA})
    logged = ivschat.create_room(name="stage", loggingConfigurationIdentifiers=[config["arn"]])
    assert _arns(ivschat, name="lobby") == [reviewed["arn"], plain["arn"]]
    assert _arns(ivschat, name="nobody") == []
    assert _arns(ivschat, messageReviewHandlerUri=LAMBDA) == [reviewed["arn"]]
    assert _arns(ivschat, messageReviewHandlerUri=OTHER_LAMBDA) == []
    assert _arns(ivschat, loggingConfigurationIdentifier=config["arn"]) == [logged["arn"]]
    assert _arns(ivschat, name="lobby", messageReviewHandlerUri=LAMBDA) == [reviewed["arn"]]


def test_list_rooms_by_missing_logging_configuration_is_not_found(ivschat: Any) -> None:
    missing = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:logging-configuration/AbCdEfGhIjKl"
    with pytest.raises(ClientError) as excinfo:
        ivschat.list_rooms(loggingConfigurationIdentifier=missing)
    assert _error(excinfo, "ResourceNotFoundException", 404)["resourceId"] == "AbCdEfGhIjKl"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("token", ["garbage", "@@@@", _b64("{}"), _b64('{"a": 1}'), _b64("[1]"), _b64('"xx"'),
                                   _b64("[null, null]")])
def test_list_rooms_invalid_next_token_is_validation_error(ivschat: Any, token: str) -> None:
    ivschat.create_room()
    with pytest.raises(ClientError) as excinfo:
        ivschat.list_rooms(nextToken=token)
    response = _error(excinfo, "ValidationException", 400)
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert response["fieldList"][0]["name"] == "nextToken"
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_room_quota_is_service_quota_exceeded() -> None:
    with Sandbox(quota_rooms=2) as sandbox:
        ivschat = sandbox.client()
        first = ivschat.create_room()
        ivschat.create_room()
        with pytest.raises(ClientError) as excinfo:
            ivschat.create_room()
        response = _error(excinfo, "ServiceQuotaExceededException", 402)
        assert response["limit"] == 2
        assert response["resourceType"] == "ROOM"
        assert response["resourceId"]
        assert len(ivschat.list_rooms()["rooms"]) == 2
        ivschat.delete_room(identifier=first["arn"])
        assert ID.fullmatch(ivschat.create_room()["id"])
