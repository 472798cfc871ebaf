"""Bad input and bad credentials: what the service refuses that boto3 lets through, and raw HTTP abuse.

The validation table covers what boto3 does NOT check client-side (maximums, patterns, enums, the
1 KB attribute rule); cases boto3 would refuse go through a client with ``parameter_validation=False``
so the server's answer is what gets tested. Raw-HTTP cases sign with botocore's own SigV4 signer.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore import UNSIGNED, xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import rules
from ivs_widgets.sandbox import Sandbox

LOGGING_ARN = f"arn:aws:ivschat:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:logging-configuration/AbCdEfGhIjK"
LAMBDA = f"arn:aws:lambda:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:function:review"
OVER_1KB = {"key": "x" * c.MAX_ATTRIBUTES_BYTES}  # 3 + 1024 bytes
MANY_TAGS = {f"k{i}": "v" for i in range(51)}

# (operation, request members given the room's ARN, member named in fieldList, boto3 would refuse it)
Case = tuple[str, Callable[[str], dict[str, Any]], str, bool]
VALIDATION_CASES: list[Case] = [
    ("ListRooms", lambda room: {"maxResults": 51}, "maxResults", False),
    ("ListRooms", lambda room: {"maxResults": 0}, "maxResults", True),
    ("ListLoggingConfigurations", lambda room: {"maxResults": 51}, "maxResults", False),
    ("CreateRoom", lambda room: {"maximumMessageLength": 501}, "maximumMessageLength", False),
    ("CreateRoom", lambda room: {"maximumMessageRatePerSecond": 101}, "maximumMessageRatePerSecond", False),
    ("UpdateRoom", lambda room: {"identifier": room, "maximumMessageLength": 501}, "maximumMessageLength", False),
    ("CreateRoom", lambda room: {"name": "has space"}, "name", False),
    ("UpdateRoom", lambda room: {"identifier": room, "name": "n" * 129}, "name", False),
    ("CreateRoom", lambda room: {"tags": MANY_TAGS}, "tags", False),
    ("CreateRoom", lambda room: {"loggingConfigurationIdentifiers": [LOGGING_ARN + str(i) for i in range(4)]},
     "loggingConfigurationIdentifiers", False),
    ("CreateRoom", lambda room: {"loggingConfigurationIdentifiers": [room]}, "loggingConfigurationIdentifiers",
     False),
    ("CreateRoom", lambda room: {"messageReviewHandler": {"uri": "https://example.com/review"}},
     "messageReviewHandler", False),
    ("CreateRoom", lambda room: {"messageReviewHandler": {"uri": LAMBDA, "fallbackResult": "MAYBE"}},
     "messageReviewHandler", False),
    ("GetRoom", lambda room: {"identifier": "notanarn"}, "identifier", False),
    ("GetRoom", lambda room: {"identifier": LOGGING_ARN + "L"}, "identifier", False),
    ("GetRoom", lambda room: {}, "identifier", True),
    ("DeleteRoom", lambda room: {"identifier": room + "/extra"}, "identifier", False),
    ("CreateChatToken", lambda room: {"roomIdentifier": room, "userId": "u", "sessionDurationInMinutes": 181},
     "sessionDurationInMinutes", False),
    ("CreateChatToken", lambda room: {"roomIdentifier": room, "userId": "u", "capabilities": ["BOGUS"]},
     "capabilities", False),
    ("CreateChatToken", lambda room: {"roomIdentifier": room, "userId": "u", "attributes": OVER_1KB},
     "attributes", False),
    ("CreateChatToken", lambda room: {"roomIdentifier": room, "userId": "u" * 129}, "userId", False),
    ("CreateChatToken", lambda room: {"roomIdentifier": room, "userId": ""}, "userId", True),
    ("SendEvent", lambda room: {"roomIdentifier": room, "eventName": "e", "attributes": OVER_1KB},
     "attributes", False),
    ("SendEvent", lambda room: {"roomIdentifier": room, "eventName": "e" * 101}, "eventName", False),
    ("DeleteMessage", lambda room: {"roomIdentifier": room, "id": "AbCdEfGhIjKlM"}, "id", False),
    ("DeleteMessage", lambda room: {"roomIdentifier": room, "id": "AbCdEfGhIjK"}, "id", True),
    ("DeleteMessage", lambda room: {"roomIdentifier": room, "id": "AbCdEf-hIjK_"}, "id", False),
    ("DeleteMessage", lambda room: {"roomIdentifier": room, "id": "AbCdEfGhIjKl", "reason": "r" * 257},
     "reason", False),
    ("DisconnectUser", lambda room: {"roomIdentifier": room, "userId": "u" * 129}, "userId", False),
    ("ListRooms", lambda room: {"loggingConfigurationIdentifier": room}, "loggingConfigurationIdentifier",
     False),
    ("CreateLoggingConfiguration", lambda room: {"destinationConfiguration": {"s3": {"bucketName": "Bad_Bucket"}}},
     "destinationConfiguration", False),
    ("CreateLoggingConfiguration", lambda room: {"destinationConfiguration": {
        "s3": {"bucketName": "logs"}, "firehose": {"deliveryStreamName": "logs"}}}, "destinationConfiguration", True),
    ("ListTagsForResource", lambda room: {"resourceArn": "notanarn"}, "resourceArn", False),
    ("TagResource", lambda room: {"resourceArn": room, "tags": MANY_TAGS}, "tags", False),
    ("UntagResource", lambda room: {"resourceArn": room, "tagKeys": [f"k{i}" for i in range(51)]}, "tagKeys",
     False),
]


@pytest.mark.parametrize(("operation", "params", "member", "unchecked"), VALIDATION_CASES,
                         ids=[f"{case[0]}-{case[2]}-{i}" for i, case in enumerate(VALIDATION_CASES)])
def test_service_side_validation(sandbox: Sandbox, ivschat: Any, room: dict[str, Any], operation: str,
                                 params: Callable[[str], dict[str, Any]], member: str, unchecked: bool) -> None:
    client = sandbox.client(config=Config(parameter_validation=False)) if unchecked else ivschat
    with pytest.raises(ClientError) as excinfo:
        getattr(client, xform_name(operation))(**params(room["arn"]))
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert response["fieldList"][0]["name"].split(".")[0] == member
    assert response["fieldList"][0]["message"] == response["Error"]["Message"]
    # Refused before any effect: nothing was created or changed.
    assert [r["arn"] for r in ivschat.list_rooms()["rooms"]] == [room["arn"]]
    assert ivschat.list_logging_configurations()["loggingConfigurations"] == []
    assert ivschat.list_tags_for_resource(resourceArn=room["arn"])["tags"] == {}


@pytest.mark.parametrize("attributes", [
    {"k": "x" * (c.MAX_ATTRIBUTES_BYTES - 1)},
    {"ключ": "é" * ((c.MAX_ATTRIBUTES_BYTES - len("ключ".encode())) // 2)},
], ids=["ascii", "multibyte"])
def test_attributes_of_exactly_1kb_are_accepted(ivschat: Any, room: dict[str, Any],
                                                attributes: dict[str, str]) -> None:
    assert rules.attributes_bytes(attributes) == c.MAX_ATTRIBUTES_BYTES
    ivschat.create_chat_token(roomIdentifier=room["arn"], userId="u", attributes=attributes)
    ivschat.send_event(roomIdentifier=room["arn"], eventName="e", attributes=attributes)


def test_attribute_size_counts_utf8_bytes_not_characters(ivschat: Any, room: dict[str, Any]) -> None:
    attributes = {"k": "é" * 512}  # 513 characters but 1025 bytes
    with pytest.raises(ClientError) as excinfo:
        ivschat.send_event(roomIdentifier=room["arn"], eventName="e", attributes=attributes)
    assert excinfo.value.response["fieldList"][0]["name"] == "attributes"


def test_sensitive_values_are_not_echoed(ivschat: Any, room: dict[str, Any]) -> None:
    secret_user = "s3cret-user-" + "u" * 120
    with pytest.raises(ClientError) as excinfo:
        ivschat.create_chat_token(roomIdentifier=room["arn"], userId=secret_user)
    assert "s3cret" not in json.dumps(excinfo.value.response, default=str)


# -- authentication -------------------------------------------------------------------------

def _client(sandbox: Sandbox, key: str = c.SANDBOX_ACCESS_KEY_ID, secret: str = c.SANDBOX_SECRET_ACCESS_KEY,
            region: str = c.SANDBOX_REGION) -> Any:
    return boto3.client("ivschat", endpoint_url=sandbox.control_endpoint, region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret)


@pytest.mark.parametrize(("make_client", "code"), [
    (lambda sb: sb.client(config=Config(signature_version=UNSIGNED)), "MissingAuthenticationTokenException"),
    (lambda sb: _client(sb, key="AKIAWRONGWRONGWRONG1"), "UnrecognizedClientException"),
    (lambda sb: _client(sb, secret="not-the-sandbox-secret"), "InvalidSignatureException"),
    (lambda sb: _client(sb, region="eu-central-1"), "InvalidSignatureException"),
], ids=["unsigned", "wrong-access-key", "wrong-secret", "other-region"])
def test_requests_without_the_sandbox_credentials_are_refused(sandbox: Sandbox, ivschat: Any,
                                                              make_client: Callable[[Sandbox], Any],
                                                              code: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        make_client(sandbox).create_room(name="intruder")
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Message"]
    assert ivschat.list_rooms()["rooms"] == []


def test_other_region_is_named_in_the_message(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as excinfo:
        _client(sandbox, region="eu-central-1").list_rooms()
    assert "eu-central-1" in excinfo.value.response["Error"]["Message"]


def test_signature_can_be_switched_off() -> None:
    with Sandbox(require_signature=False) as sandbox:
        unsigned = sandbox.client(config=Config(signature_version=UNSIGNED))
        room = unsigned.create_room(name="open")
        assert unsigned.get_room(identifier=room["arn"])["name"] == "open"


#: Calls naming a resource by ARN, given (room ARN, logging configuration ARN).
BY_ARN: dict[str, Callable[[Any, str, str], Any]] = {
    "GetRoom": lambda ivschat, room, config: ivschat.get_room(identifier=room),
    "UpdateRoom": lambda ivschat, room, config: ivschat.update_room(identifier=room, name="x"),
    "DeleteRoom": lambda ivschat, room, config: ivschat.delete_room(identifier=room),
    "CreateChatToken": lambda ivschat, room, config: ivschat.create_chat_token(roomIdentifier=room, userId="u"),
    "SendEvent": lambda ivschat, room, config: ivschat.send_event(roomIdentifier=room, eventName="e"),
    "DeleteMessage": lambda ivschat, room, config: ivschat.delete_message(roomIdentifier=room, id="AbCdEfGhIjKl"),
    "DisconnectUser": lambda ivschat, room, config: ivschat.disconnect_user(roomIdentifier=room, userId="u"),
    "CreateRoom": lambda ivschat, room, config: ivschat.create_room(loggingConfigurationIdentifiers=[config]),
    "ListRooms": lambda ivschat, room, config: ivschat.list_rooms(loggingConfigurationIdentifier=config),
    "GetLoggingConfiguration": lambda ivschat, room, config: ivschat.get_logging_configuration(identifier=config),
    "UpdateLoggingConfiguration": lambda ivschat, room, config: ivschat.update_logging_configuration(
        identifier=config, name="x"),
    "DeleteLoggingConfiguration": lambda ivschat, room, config: ivschat.delete_logging_configuration(
        identifier=config),
    "TagResource": lambda ivschat, room, config: ivschat.tag_resource(resourceArn=room, tags={"a": "b"}),
    "ListTagsForResource": lambda ivschat, room, config: ivschat.list_tags_for_resource(resourceArn=config),
    "UntagResource": lambda ivschat, room, config: ivschat.untag_resource(resourceArn=room, tagKeys=["a"]),
}


@pytest.mark.parametrize("owner", ["account", "region"])
@pytest.mark.parametrize("operation", BY_ARN)
def test_another_accounts_or_regions_resource_is_access_denied(ivschat: Any, room: dict[str, Any], operation: str,
                                                               owner: str) -> None:
    """IAM refuses before the service looks: even the id of one of the sandbox's own resources is a 403
    (never a 404, which would tell the caller what exists) under another account or region."""
    config = ivschat.create_logging_configuration(destinationConfiguration={"s3": {"bucketName": "logs"}})
    before = _resources(ivschat)
    own = f":{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}:"
    other = f":{c.SANDBOX_REGION}:210987654321:" if owner == "account" else f":eu-west-1:{c.SANDBOX_ACCOUNT_ID}:"
    with pytest.raises(ClientError) as excinfo:
        BY_ARN[operation](ivschat, room["arn"].replace(own, other), config["arn"].replace(own, other))
    response = excinfo.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDeniedException",
                                                                                          403)
    assert response["Error"]["Message"]
    assert _resources(ivschat) == before  # nothing of the sandbox's own changed


def _resources(ivschat: Any) -> list[dict[str, Any]]:
    """Every room and logging configuration, with their tags."""
    found = [*ivschat.list_rooms()["rooms"], *ivschat.list_logging_configurations()["loggingConfigurations"]]
    return [{**item, "tags": ivschat.list_tags_for_resource(resourceArn=item["arn"])["tags"]} for item in found]


# -- raw HTTP -------------------------------------------------------------------------------

Answer = tuple[int, http.client.HTTPMessage, bytes]


def _send(sandbox: Sandbox, method: str, path: str, body: bytes = b"{}", *,
          content_type: str | None = "application/json", sign: bool = True,
          headers: dict[str, str] | None = None, sent_body: bytes | None = None) -> Answer:
    """One HTTP request to the control endpoint, SigV4-signed by botocore unless ``sign`` is False.

    ``sent_body`` replaces the body after signing (a tampered request).
    """
    request = AWSRequest(method=method, url=sandbox.control_endpoint + path, data=body,
                         headers={"Content-Type": content_type} if content_type else {})
    if sign:
        credentials = Credentials(sandbox.config.access_key_id, sandbox.config.secret_access_key)
        SigV4Auth(credentials, "ivschat", sandbox.config.region).add_auth(request)
    endpoint = urlsplit(sandbox.control_endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
    try:
        connection.request(method, path, body=body if sent_body is None else sent_body,
                           headers={**dict(request.headers.items()), **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _error_body(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """Check the error's wire shape (status, headers, JSON message) and return the body."""
    got_status, headers, raw = answer
    assert got_status == status, raw
    assert headers["x-amzn-ErrorType"] == code
    assert headers["x-amzn-RequestId"]
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def still_serving(ivschat: Any) -> Iterator[None]:
    """After the test, a well-formed boto3 request still succeeds on the same sandbox."""
    yield
    assert ivschat.create_room(name="after")["name"] == "after"
    assert len(ivschat.list_rooms()["rooms"]) == 1


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize("body", [b'{"name": ', b"[]", b'[{"name": "a"}]', b'"CreateRoom"', b"42", b"\xff\xfe{}"],
                         ids=["truncated", "empty-array", "array", "string", "number", "not-utf8"])
def test_body_that_is_not_a_json_object_is_refused(sandbox: Sandbox, body: bytes) -> None:
    error = _error_body(_send(sandbox, "POST", "/CreateRoom", body), 400, "ValidationException")
    assert error["reason"] == "OTHER"


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(sandbox: Sandbox, content_type: str) -> None:
    answer = _send(sandbox, "POST", "/CreateRoom", b'{"name": "x"}', content_type=content_type)
    _error_body(answer, 415, "UnsupportedMediaTypeException")


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/NoSuchOperation"), ("GET", "/CreateRoom"), ("PUT", "/CreateRoom"), ("DELETE", "/DeleteRoom"),
    ("POST", "/CreateRoom/extra"), ("POST", "/tags"), ("POST", "/tags/"), ("GET", "/"), ("PATCH", "/ListRooms"),
    ("POST", "/createroom"),
])
def test_unknown_path_or_method_is_unknown_operation(sandbox: Sandbox, method: str, path: str) -> None:
    error = _error_body(_send(sandbox, method, path), 400, "ValidationException")
    assert error["reason"] == "UNKNOWN_OPERATION"
    assert path in error["message"]


@pytest.mark.usefixtures("still_serving")
def test_huge_body_is_413(sandbox: Sandbox) -> None:
    body = json.dumps({"name": "x" * (2 * 1024 * 1024)}).encode()
    _error_body(_send(sandbox, "POST", "/CreateRoom", body), 413, "RequestEntityTooLargeException")


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize(("body", "member"), [
    ({"maximumMessageLength": "500"}, "maximumMessageLength"),
    ({"maximumMessageLength": True}, "maximumMessageLength"),
    ({"maximumMessageRatePerSecond": 1.5}, "maximumMessageRatePerSecond"),
    ({"name": 5}, "name"),
    ({"tags": ["a"]}, "tags"),
    ({"tags": {"k": 1}}, "tags"),
    ({"messageReviewHandler": LAMBDA}, "messageReviewHandler"),
    ({"loggingConfigurationIdentifiers": LOGGING_ARN + "L"}, "loggingConfigurationIdentifiers"),
])
def test_wrong_member_types_are_field_validation_errors(sandbox: Sandbox, body: dict[str, Any],
                                                        member: str) -> None:
    error = _error_body(_send(sandbox, "POST", "/CreateRoom", json.dumps(body).encode()), 400,
                        "ValidationException")
    assert error["reason"] == "FIELD_VALIDATION_FAILED"
    assert error["fieldList"][0]["name"].split(".")[0] == member


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize(("kwargs", "code"), [
    ({"sign": False}, "MissingAuthenticationTokenException"),
    ({"headers": {"Authorization": "AWS4-HMAC-SHA256 nonsense"}}, "IncompleteSignatureException"),
    ({"sent_body": b'{"name": "tampered"}'}, "InvalidSignatureException"),
], ids=["unsigned", "incomplete", "tampered-body"])
def test_raw_authentication_failures(sandbox: Sandbox, kwargs: dict[str, Any], code: str) -> None:
    _error_body(_send(sandbox, "POST", "/CreateRoom", b'{"name": "signed"}', **kwargs), 403, code)


def test_raw_signed_requests_work(sandbox: Sandbox, room: dict[str, Any]) -> None:
    """The raw helper signs like boto3 does, so the refusals above are about the input alone."""
    status, headers, raw = _send(sandbox, "POST", "/GetRoom", json.dumps({"identifier": room["arn"]}).encode())
    assert status == 200 and json.loads(raw)["arn"] == room["arn"]
    assert headers["x-amzn-RequestId"]
    status, _, raw = _send(sandbox, "POST", "/DeleteRoom", json.dumps({"identifier": room["arn"]}).encode())
    assert (status, raw) == (204, b"")
    status, _, raw = _send(sandbox, "POST", "/ListRooms", b"", content_type=None)
    assert status == 200 and json.loads(raw) == {"rooms": []}


def test_operations_whose_output_has_no_members_answer_an_empty_body(sandbox: Sandbox, ivschat: Any,
                                                                     room: dict[str, Any]) -> None:
    """AWS documents DisconnectUser as HTTP 200 with an empty body: a raw client must not get ``{}``."""
    arn = quote(room["arn"], safe="")
    answers = {
        "DisconnectUser": _send(sandbox, "POST", "/DisconnectUser",
                                json.dumps({"roomIdentifier": room["arn"], "userId": "u"}).encode()),
        "TagResource": _send(sandbox, "POST", f"/tags/{arn}", json.dumps({"tags": {"a": "b"}}).encode()),
        "UntagResource": _send(sandbox, "DELETE", f"/tags/{arn}?tagKeys=a", b""),
    }
    model = ivschat.meta.service_model
    for name, (status, headers, raw) in answers.items():
        assert model.operation_model(name).output_shape.members == {}, name
        assert (status, raw) == (200, b""), name
        assert headers["x-amzn-RequestId"] and headers["Content-Type"] == "application/json"
    assert ivschat.list_tags_for_resource(resourceArn=room["arn"])["tags"] == {}
