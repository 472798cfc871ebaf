"""Fuzzing the control plane with generated raw HTTP requests over a real socket.

Requests are the real operations of botocore's ``ivschat`` model with members of every shape set to
plausible, edge and wrong values; arbitrary JSON; bodies that are not JSON at all (or are, but too
deep or too large); and near-miss or junk methods and paths. Whatever arrives, the answer must be
well-formed rest-json: a status from the documented set (never 500), a request id, and for errors
an ``x-amzn-ErrorType`` header and a JSON body with a ``message`` that botocore's own parser reads
back as that error. No request may hang, and the sandbox still serves boto3 afterwards.
"""

from __future__ import annotations

import http.client
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import fuzzutil
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape
from botocore.parsers import RestJSONParser
from fuzzutil import Junk, nested
from hypothesis import given
from hypothesis import strategies as st

from ivs_widgets.protocol.facts import MAX_REQUEST_BODY_BYTES
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.validation import operation, service_model

#: Requests in the default run (times $IVS_FUZZ_SCALE): unsigned to a sandbox that does not ask for
#: signatures (the inputs are the point), and a share signed, tampered or unsigned (auth is).
REQUESTS = 3_000 * fuzzutil.scale()
SIGNED_REQUESTS = 600 * fuzzutil.scale()
BATCH = 30
#: Every status the control plane may answer with; 500 would be a sandbox bug.
DOCUMENTED_STATUSES = {200, 204, 400, 402, 403, 404, 409, 413, 415, 429}
TIMEOUT = 10.0
OPERATIONS = tuple(service_model().operation_names)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "post", "FOO", "M-SEARCH")
CONTENT_TYPES = (None, "application/json", "application/x-amz-json-1.1", "application/json; charset=utf-8",
                 "", "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json;;;")


class Targets:
    """Real resources for generated requests to hit (besides made-up ones), replaced when deleted."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.ivschat = sandbox.client()
        self.region, self.account = sandbox.config.region, sandbox.config.account_id
        self.room_arn = self.logging_arn = ""
        self.refresh()

    def refresh(self) -> None:
        if not self._exists(self.ivschat.get_room, self.room_arn):
            self.room_arn = self.ivschat.create_room(name="fuzz")["arn"]
        if not self._exists(self.ivschat.get_logging_configuration, self.logging_arn):
            self.logging_arn = self.ivschat.create_logging_configuration(
                destinationConfiguration={"s3": {"bucketName": "fuzz"}})["arn"]

    def _exists(self, get: Callable[..., Any], arn: str) -> bool:
        try:
            return bool(arn) and bool(get(identifier=arn))
        except self.ivschat.exceptions.ResourceNotFoundException:
            return False

    def arn(self, junk: Junk, kind: str) -> str:
        """A real ARN of ``kind``, or one that looks right and names nothing."""
        real = self.room_arn if kind == "room" else self.logging_arn
        return real if junk.chance() else f"arn:aws:ivschat:{self.region}:{self.account}:{kind}/{junk.text(1, 12)}"


@dataclass(frozen=True)
class Call:
    """One raw request, and the model operation its route names (None for junk routes)."""

    method: str
    target: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    operation: str | None = None

    def show(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(%d bytes)" % len(self.body)
        return f"{self.method} {self.target[:300]} {self.headers} {body!r}"


# -- values for the model's shapes -----------------------------------------------------------
def _sample_from_pattern(junk: Junk, pattern: str, size: int) -> str | None:
    """``size`` characters of a ``[class]+`` / ``[class]*`` pattern (None for other patterns)."""
    match = re.fullmatch(r"(\[[^\]]+\])[+*]", pattern)
    if match is None:
        return None
    alphabet = [c for c in map(chr, range(32, 127)) if re.fullmatch(match[1], c)]
    return "".join(junk.pick(alphabet) for _ in range(size))


def plausible_string(junk: Junk, shape: Shape, targets: Targets) -> str:
    """A string the service would likely accept for ``shape``."""
    meta = shape.metadata
    if shape.enum:
        return junk.pick(shape.enum)
    if shape.name in ("RoomIdentifier", "LoggingConfigurationIdentifier", "ResourceArn"):
        kind = {"RoomIdentifier": "room", "LoggingConfigurationIdentifier": "logging-configuration"}.get(
            shape.name, junk.pick(("room", "logging-configuration")))
        return targets.arn(junk, kind)
    if shape.name == "LambdaArn":
        return junk.pick(("", f"arn:aws:lambda:{targets.region}:{targets.account}:function:{junk.text(1, 20)}"))
    size = junk.integer(meta.get("min", 0), min(meta.get("max", 40), 40))
    sample = _sample_from_pattern(junk, meta.get("pattern", ""), size)
    return sample if sample is not None else junk.text(size, size)


def string_value(junk: Junk, shape: Shape, targets: Targets, wild: float) -> str:
    """A plausible string or, with probability ``wild``, one past a length limit, mangled, or not Unicode."""
    value = plausible_string(junk, shape, targets)
    if not junk.chance(wild):
        return value
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    roll = junk.random.randrange(5)
    if roll == 0 and high is not None:
        return (value * (high + 1) or "a" * (high + 1))[: high + junk.pick((0, 1, 2))]
    if roll == 1 and low > 0:
        return value[: low - 1]
    if roll == 2:
        return junk.broken_text()
    if roll == 3:
        return junk.text(0, 40)
    return value.lower() if junk.chance() else value + junk.character()


def integer_value(junk: Junk, shape: Shape, wild: float) -> Any:
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 2**31)
    if not junk.chance(wild):
        return junk.pick((low, high, junk.integer(low, high)))
    return junk.pick((low - 1, high + 1, 0, -1, 2**63, -2**63 - 1, 10**30, 1.5, float(high), str(low), True))


def sized(junk: Junk, shape: Shape, wild: float) -> int:
    """A collection size within the shape's limits or, with probability ``wild``, at or past them."""
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    if not junk.chance(wild):
        return junk.integer(low, min(high if high is not None else 3, 3))
    return junk.pick((high if high is not None else 10, (high or 10) + 1))


def value_for(junk: Junk, shape: Shape, targets: Targets, wild: float) -> Any:
    """A value for ``shape``: plausible, except that each part goes wrong with probability ``wild``
    (past an edge, mangled, or of another type altogether)."""
    if junk.chance(wild / 4):
        return junk.json(2)
    kind = shape.type_name
    if kind == "structure":
        members = {name: value_for(junk, member, targets, wild) for name, member in shape.members.items()
                   if junk.chance(1 - wild if name in shape.required_members else 0.5)}
        if junk.chance(0.1):
            members[junk.text(1, 10)] = junk.json(2)  # unknown members are ignored
        return members
    if kind == "list":
        return [value_for(junk, shape.member, targets, wild) for _ in range(sized(junk, shape, wild))]
    if kind == "map":
        entries = {string_value(junk, shape.key, targets, wild): value_for(junk, shape.value, targets, wild)
                   for _ in range(sized(junk, shape, wild))}
        if junk.chance(wild):  # attribute maps: past 1 KB in total
            entries["big"] = junk.pick(("x", "\u00e9", "\U0001f600")) * junk.integer(250, 1100)
        return entries
    if kind in ("integer", "long"):
        return integer_value(junk, shape, wild)
    if kind == "boolean":
        return junk.chance()
    return string_value(junk, shape, targets, wild)


# -- requests --------------------------------------------------------------------------------
def _headers(junk: Junk) -> dict[str, str]:
    content_type = junk.pick(CONTENT_TYPES) if junk.chance(0.3) else "application/json"
    return {} if content_type is None else {"Content-Type": content_type}


def _route(junk: Junk, op: OperationModel, targets: Targets, params: dict[str, Any]) -> str:
    """The request target of ``op``: its path (a resource ARN filled in) and, for untagging, the query."""
    uri = op.http["requestUri"]
    if "{resourceArn}" not in uri:
        return uri
    arn = params.pop("resourceArn", None)
    arn = arn if isinstance(arn, str) else targets.arn(junk, "room")
    target = uri.replace("{resourceArn}", quote(arn, safe="", errors="surrogatepass"))
    keys = params.pop("tagKeys", None)
    if op.name == "UntagResource" and isinstance(keys, list):
        target += "?" + urlencode([("tagKeys", str(key)) for key in keys], errors="surrogatepass")
    return target


def modeled_request(junk: Junk, targets: Targets) -> Call:
    """A real operation at its real route, its input shape filled with plausible to absurd values."""
    op = operation(junk.pick(OPERATIONS))
    params = value_for(junk, op.input_shape, targets, wild=junk.pick((0.0, 0.02, 0.1, 0.3)))
    params = params if isinstance(params, dict) else {"value": params}
    target = _route(junk, op, targets, params)
    method = op.http["method"] if junk.chance(0.9) else junk.pick(METHODS)
    body = b"" if method in ("GET", "DELETE") and junk.chance(0.8) else \
        fuzzutil.dumps(params, ascii_only=junk.chance(0.7)).encode()
    return Call(method, target, body, _headers(junk), op.name if method == op.http["method"] else None)


def any_json_body(junk: Junk, targets: Targets) -> Call:
    """Arbitrary JSON (object or not) to a real operation."""
    op = operation(junk.pick(OPERATIONS))
    target = _route(junk, op, targets, {})
    return Call(op.http["method"], target, fuzzutil.dumps(junk.json(3), junk.chance()).encode(), _headers(junk),
                op.name)


def broken_body(junk: Junk, targets: Targets) -> Call:
    """A body that is not JSON, not UTF-8, or JSON at its edges: too deep, huge numbers, NaN, BOM, dup keys."""
    op = operation(junk.pick([name for name in OPERATIONS if operation(name).http["method"] == "POST"]))
    valid = json.dumps({"name": "x", "identifier": targets.room_arn}).encode()
    body = junk.pick((
        junk.random.randbytes(junk.integer(1, 100)),
        valid[: junk.integer(1, len(valid) - 1)],
        b"\xef\xbb\xbf" + valid,
        valid.replace(b'"x"', b'"\xff\xfe"'),
        nested(junk.integer(10_000, 50_000)).encode(),
        b'{"name": ' + b"9" * junk.integer(5_000, 20_000) + b"}",
        b'{"maximumMessageLength": NaN, "maximumMessageRatePerSecond": Infinity}',
        b'{"name": "a", "name": "b", "tags": {"k": "1", "k": "2"}}',
        b" \t\r\n ",
        b"null",
        json.dumps({"identifier": junk.broken_text()}).encode(),
    ))
    return Call("POST", op.http["requestUri"], body, _headers(junk), op.name)


def odd_route(junk: Junk, targets: Targets) -> Call:
    """A method and path that name no operation, or nearly do."""
    name = junk.pick(OPERATIONS)
    path = junk.pick((
        "/" + name.lower(), "/" + name + "/", "/" + name + "/extra", "//" + name, "/" + name + "?x=1",
        "/tags", "/tags/", "/tags/" + quote(junk.text(0, 20), safe=""), "/", "/" + quote(junk.text(0, 30)),
        "/" + quote(junk.text(1, 10)) + "/" + quote(junk.text(1, 10)), "/%ff%fe", "/tags/%ed%a0%80", "/%00",
        "/tags/" + quote(targets.room_arn, safe="") + "/more", "/" + name + "%2F",
    ))
    body = junk.pick((b"", b"{}", fuzzutil.dumps(junk.json(2), True).encode()))
    return Call(junk.pick(METHODS), path, body, _headers(junk))


def body_size_edge(junk: Junk, targets: Targets) -> Call:
    """Large bodies (cut short, so not JSON) and, now and then, one just past the size cap."""
    size = MAX_REQUEST_BODY_BYTES + junk.integer(1, 4096) if junk.chance(0.15) else junk.integer(60_000, 200_000)
    name = junk.pick(("a", "\u00e9"))
    body = json.dumps({"name": name * size}, ensure_ascii=False).encode()[:size]
    return Call("POST", junk.pick(("/CreateRoom", "/ListRooms", "/NoSuchThing")), body, {})


#: Every kind of request; requests shaped by the model come up most often.
KINDS: tuple[Callable[[Junk, Targets], Call], ...] = (
    modeled_request, modeled_request, modeled_request, modeled_request, any_json_body, broken_body, odd_route,
    body_size_edge)
SEEDS = fuzzutil.seeds(KINDS)


# -- sending and checking --------------------------------------------------------------------
class Client:
    """One keep-alive HTTP connection to the sandbox, signing requests when asked to."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        endpoint = urlsplit(sandbox.control_endpoint)
        self.connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=TIMEOUT)

    def sign(self, call: Call, secret_key: str | None = None) -> Call:
        """``call`` with SigV4 headers, from the sandbox's credentials (or another secret key)."""
        config = self.sandbox.config
        request = AWSRequest(method=call.method, url=self.sandbox.control_endpoint + call.target, data=call.body,
                             headers=call.headers)
        credentials = Credentials(config.access_key_id, secret_key or config.secret_access_key)
        SigV4Auth(credentials, "ivschat", config.region).add_auth(request)
        return Call(call.method, call.target, call.body, dict(request.headers.items()), call.operation)

    def send(self, call: Call) -> tuple[int, http.client.HTTPMessage, bytes]:
        try:
            self.connection.request(call.method, call.target, body=call.body, headers=call.headers)
            response = self.connection.getresponse()
            return response.status, response.headers, response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            raise AssertionError(f"no answer ({error!r}) to {call.show()}") from None

    def close(self) -> None:
        self.connection.close()


def check(call: Call, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
    """A documented status and a well-formed rest-json answer that botocore can parse."""
    context = f"{call.show()} got {status} {dict(headers)} {body[:300]!r}"
    assert status in DOCUMENTED_STATUSES, context
    assert headers.get("x-amzn-RequestId"), context
    shape = operation(call.operation).output_shape if call.operation and status < 400 else None
    if call.method == "HEAD" or status == 204 or (shape is not None and not shape.members):
        assert body == b"", context  # no answer, or one without members (DisconnectUser, the tag ops)
    else:
        assert headers.get("Content-Type", "").startswith("application/json"), context
        answer = json.loads(body)
        assert isinstance(answer, dict), context
        if status >= 400:
            assert isinstance(answer.get("message"), str) and answer["message"], context
            assert answer.get("__type") == headers.get("x-amzn-ErrorType"), context
    if status >= 400:
        assert headers.get("x-amzn-ErrorType"), context
    parsed = RestJSONParser().parse({"status_code": status, "headers": HTTPHeaders.from_pairs(headers.items()),
                                     "body": body}, shape)
    if status >= 400:
        assert parsed["Error"]["Code"] == headers["x-amzn-ErrorType"], context


def exchange(client: Client, targets: Targets, call: Call) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send ``call`` and check its answer; a deleted target is replaced for the calls that follow."""
    status, headers, body = client.send(call)
    check(call, status, headers, body)
    if status == 204:
        targets.refresh()
    return status, headers, body


def _still_serves(sandbox: Sandbox) -> None:
    ivschat = sandbox.client()
    room = ivschat.create_room(name="after")
    assert ivschat.get_room(identifier=room["arn"])["name"] == "after"


def test_generated_requests_always_get_well_formed_answers() -> None:
    # Quotas off: the fuzzer sends hundreds of requests a second, and 429s would hide the answers under test
    # (tests/test_control_quotas.py covers throttling).
    with Sandbox(require_signature=False, rate_quotas=False) as sandbox:
        targets = Targets(sandbox)
        client = Client(sandbox)
        sent = 0

        @fuzzutil.fuzz_settings(max_examples=math.ceil(REQUESTS / BATCH))
        @given(st.lists(SEEDS, min_size=BATCH, max_size=BATCH))
        def play(batch: list[tuple[Callable[[Junk, Targets], Call], int]]) -> None:
            nonlocal sent
            for kind, seed in batch:
                sent += 1
                exchange(client, targets, kind(Junk(seed), targets))

        try:
            play()
        finally:
            client.close()
        _still_serves(sandbox)
    assert sent >= REQUESTS


@pytest.mark.parametrize("signing", ["signed", "wrong-secret", "tampered", "unsigned"])
def test_generated_requests_are_answered_alike_signed_or_refused(sandbox: Sandbox, signing: str) -> None:
    # With signatures required, a correctly signed request reaches validation like any other, and
    # anything not signed with the sandbox's secret is refused with 403 before its input is read.
    targets = Targets(sandbox)
    client = Client(sandbox)
    sent = 0

    @fuzzutil.fuzz_settings(max_examples=math.ceil(SIGNED_REQUESTS / 4 / BATCH))
    @given(st.lists(SEEDS, min_size=BATCH, max_size=BATCH))
    def play(batch: list[tuple[Callable[[Junk, Targets], Call], int]]) -> None:
        nonlocal sent
        for kind, seed in batch:
            call = kind(Junk(seed), targets)
            if signing == "signed":
                call = client.sign(call)
            elif signing == "wrong-secret":
                call = client.sign(call, secret_key="not-the-sandbox-secret")
            elif signing == "tampered":
                signed = client.sign(call)
                call = Call(call.method, call.target, call.body + b" ", signed.headers, call.operation)
            sent += 1
            status, headers, body = exchange(client, targets, call)
            if signing != "signed":  # only a body over the cap or a route to nowhere is refused first
                unroutable = call.method == "HEAD" or json.loads(body).get("reason") == "UNKNOWN_OPERATION"
                assert status in (403, 413) or unroutable, f"{call.show()} got {status} {body[:200]!r}"

    try:
        play()
    finally:
        client.close()
    _still_serves(sandbox)
    assert sent >= SIGNED_REQUESTS / 4
