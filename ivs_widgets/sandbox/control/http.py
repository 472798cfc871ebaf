"""The control plane over HTTP (rest-json), on tornado (moto's "responses" + "urls" layers).

Every request is authenticated (SigV4), parsed, validated against botocore's model and dispatched
to ``ControlPlane``. Whatever goes wrong, the client gets a rest-json error botocore can parse,
never a traceback or a hung request.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import tornado.web

from ivs_widgets.constants import MAX_REQUEST_BODY_BYTES
from ivs_widgets.sandbox.control import auth, validation
from ivs_widgets.sandbox.control.errors import ApiError, validation_error
from ivs_widgets.sandbox.control.operations import ControlPlane

log = logging.getLogger("ivs_widgets.sandbox.control")

#: (method, first path segment) → operation, built from the model so paths are never retyped.
_ROUTES: dict[tuple[str, str], str] = {}
for _name in validation.service_model().operation_names:
    _http = validation.operation(_name).http
    _ROUTES[(_http["method"], _http["requestUri"].split("/")[1])] = _name


@tornado.web.stream_request_body
class JsonApiHandler(tornado.web.RequestHandler):
    """Body reading, errors and answers in the rest-json wire format; subclasses implement ``_handle``."""

    def initialize(self, control: ControlPlane) -> None:
        self.control = control
        self._chunks: list[bytes] = []
        self._size = 0

    def data_received(self, chunk: bytes) -> None:
        # Count everything, keep at most the cap: an oversized body is drained, then refused.
        self._size += len(chunk)
        if self._size <= MAX_REQUEST_BODY_BYTES:
            self._chunks.append(chunk)

    def check_xsrf_cookie(self) -> None:
        return None

    async def get(self, path: str) -> None:
        self._dispatch(path)

    async def post(self, path: str) -> None:
        self._dispatch(path)

    async def delete(self, path: str) -> None:
        self._dispatch(path)

    async def put(self, path: str) -> None:
        self._dispatch(path)

    async def patch(self, path: str) -> None:
        self._dispatch(path)

    async def head(self, path: str) -> None:
        self._dispatch(path)

    async def options(self, path: str) -> None:
        self._dispatch(path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """What tornado refuses before ``_dispatch`` (a method it does not know, a path that is not
        UTF-8) cannot name an operation: answer it as an unknown operation, in the wire format.

        Tornado then closes the connection without reading the body; saying so lets keep-alive
        clients reconnect instead of failing their next request on a dead socket.
        """
        error = validation_error(f"Unknown operation: {self.request.method} {self.request.path}",
                                 reason="UNKNOWN_OPERATION")
        self.set_status(error.status)
        self.set_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.set_header("x-amzn-ErrorType", error.code)
        self.set_header("Content-Type", "application/json")
        self.set_header("Connection", "close")
        self.finish(json.dumps(error.body()))

    def _handle(self, path: str) -> tuple[int, Any]:
        raise NotImplementedError

    def _body(self) -> bytes:
        if self._size > MAX_REQUEST_BODY_BYTES:
            raise ApiError("RequestEntityTooLargeException", 413,
                           f"Request body is larger than {MAX_REQUEST_BODY_BYTES} bytes")
        return b"".join(self._chunks)

    def _dispatch(self, path: str) -> None:
        request_id = str(uuid.uuid4())
        self.set_header("x-amzn-RequestId", request_id)
        try:
            status, result = self._handle(path)
        except ApiError as error:
            status, result = error.status, error.body()
            self.set_header("x-amzn-ErrorType", error.code)
        except Exception:  # a bug must still answer in the wire format, and keep serving
            log.exception("internal error in %s %s", self.request.method, path)
            status, result = 500, {"__type": "InternalServerException", "message": "Internal server error"}
            self.set_header("x-amzn-ErrorType", "InternalServerException")
        self.set_status(status)
        if status == 204:
            self.finish()
        elif isinstance(result, bytes):  # a file (the workshop's certificate)
            self.finish(result)
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(result))

    def _parse_body(self, body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        content_type = self.request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if content_type not in ("application/json", "application/x-amz-json-1.1", ""):
            raise ApiError("UnsupportedMediaTypeException", 415,
                           f"Unsupported Content-Type {content_type!r}: send application/json")
        try:
            params = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to read
            raise validation_error(f"Request body is not valid JSON: {exc}", reason="OTHER") from None
        if not isinstance(params, dict):
            raise validation_error("Request body must be a JSON object", reason="OTHER")
        return params


class OperationHandler(JsonApiHandler):
    """One handler for every ``ivschat`` path: routing, auth and errors are the same for all operations."""

    def _handle(self, path: str) -> tuple[int, Any]:
        body = self._body()
        method = self.request.method or ""
        segments = path.split("/", 1)
        name = _ROUTES.get((method, segments[0]))
        if name is None or (segments[0] == "tags") != (len(segments) == 2 and bool(segments[1])):
            raise validation_error(f"Unknown operation: {method} /{path}", reason="UNKNOWN_OPERATION")
        if self.control.config.require_signature:
            auth.verify(self.control.config, method, self.request.uri or "", self.request.headers, body)
        params = self._parse_body(body) if method != "GET" and method != "DELETE" else {}
        if segments[0] == "tags":
            params["resourceArn"] = segments[1]  # tornado has percent-decoded the path
            if method == "DELETE":
                params["tagKeys"] = [_utf8(k, "tagKeys") for k in self.request.query_arguments.get("tagKeys", [])]
        op = validation.operation(name)
        validation.validate(op.input_shape, params)
        result = getattr(self.control, name)(validation.modeled(op.input_shape, params))
        return op.http.get("responseCode", 200), result


def _utf8(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise validation_error(f"{name} must be UTF-8", field=name) from None


def application(control: ControlPlane, *extra: tuple[str, type[JsonApiHandler], dict[str, Any]]) -> tornado.web.Application:
    """The ``ivschat`` API on every path, after ``extra`` routes (the workshop's, under ``/workshop/``)."""
    # The raw path is routed as one string: tornado must not split the percent-encoded ARN.
    return tornado.web.Application([*extra, (r"/(.*)", OperationHandler, {"control": control})],
                                   compress_response=False, log_function=_log_request)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Errors are answers here, not incidents: log every request at debug level only."""
    log.debug("%d %s %.1fms", handler.get_status(), handler._request_summary(), 1000 * handler.request.request_time())
