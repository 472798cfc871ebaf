"""Answers in the rest-json wire format botocore parses, for every HTTP route of the sandbox.

Body reading (capped), JSON parsing, and errors as ``x-amzn-ErrorType`` + ``{"__type", "message"}``:
whatever goes wrong, the client gets an error it can parse, never a traceback or a hung request.
Each service's routes subclass :class:`JsonApiHandler` and implement ``_handle``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import tornado.web

from ivs_widgets.protocol.facts import MAX_REQUEST_BODY_BYTES
from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.errors import ApiError, validation_error

log = logging.getLogger("ivs_widgets.sandbox.control")


@tornado.web.stream_request_body
class JsonApiHandler(tornado.web.RequestHandler):
    """Body reading, errors and answers in the rest-json wire format; subclasses implement ``_handle``."""

    def initialize(self, config: SandboxConfig) -> None:
        self.config = config
        self._chunks: list[bytes] = []
        self._size = 0

    def data_received(self, chunk: bytes) -> None:
        # Count everything, keep at most the cap: an oversized body is drained, then refused.
        self._size += len(chunk)
        if self._size <= MAX_REQUEST_BODY_BYTES:
            self._chunks.append(chunk)

    def check_xsrf_cookie(self) -> None:
        return None

    async def _any_method(self, path: str) -> None:
        self._dispatch(path)

    # Every method reaches ``_handle``, which decides what the path and method mean.
    get = post = delete = put = patch = head = options = _any_method

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

    def _error_body(self, error: ApiError) -> dict[str, Any]:
        """The error's body on the wire; a service whose model names error members otherwise reshapes it."""
        return error.body()

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
            status, result = error.status, self._error_body(error)
            self.set_header("x-amzn-ErrorType", error.code)
        except Exception:  # a bug must still answer in the wire format, and keep serving
            log.exception("internal error in %s %s", self.request.method, path)
            status, result = 500, {"__type": "InternalServerException", "message": "Internal server error"}
            self.set_header("x-amzn-ErrorType", "InternalServerException")
        self.set_status(status)
        if isinstance(result, bytes):  # a file (the workshop's certificate)
            self.finish(result)
            return
        self.set_header("Content-Type", "application/json")  # tornado drops it from a 204
        # None: a 204, or an operation whose answer has no members (an empty body, not "{}").
        self.finish(None if result is None else json.dumps(result))

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
