"""The ``ivschat`` control plane over HTTP (rest-json), on tornado (moto's "responses" + "urls" layers).

Every request is authenticated (SigV4), parsed, validated against botocore's model and dispatched
to ``ControlPlane``. Whatever goes wrong, the client gets a rest-json error botocore can parse,
never a traceback or a hung request.
"""

from __future__ import annotations

import logging
from typing import Any

import tornado.web

from ivs_widgets.sandbox.core import auth, validation
from ivs_widgets.sandbox.core.errors import validation_error
from ivs_widgets.sandbox.core.json_api import JsonApiHandler
from ivs_widgets.sandbox.ivschat.models import ControlPlane

log = logging.getLogger("ivs_widgets.sandbox.control")

#: (method, first path segment) → operation, built from the model so paths are never retyped.
_ROUTES: dict[tuple[str, str], str] = {}
for _name in validation.service_model().operation_names:
    _http = validation.operation(_name).http
    _ROUTES[(_http["method"], _http["requestUri"].split("/")[1])] = _name


class OperationHandler(JsonApiHandler):
    """One handler for every ``ivschat`` path: routing, auth and errors are the same for all operations."""

    def initialize(self, control: ControlPlane) -> None:  # type: ignore[override]
        super().initialize(control.config)
        self.control = control

    def _handle(self, path: str) -> tuple[int, Any]:
        body = self._body()
        method = self.request.method or ""
        segments = path.split("/", 1)
        name = _ROUTES.get((method, segments[0]))
        if name is None or (segments[0] == "tags") != (len(segments) == 2 and bool(segments[1])):
            raise validation_error(f"Unknown operation: {method} /{path}", reason="UNKNOWN_OPERATION")
        if self.config.require_signature:
            auth.verify(self.config, method, self.request.uri or "", self.request.headers, body)
        params = self._parse_body(body) if method != "GET" and method != "DELETE" else {}
        if segments[0] == "tags":
            params["resourceArn"] = segments[1]  # tornado has percent-decoded the path
            if method == "DELETE":
                params["tagKeys"] = [_utf8(k, "tagKeys") for k in self.request.query_arguments.get("tagKeys", [])]
        op = validation.operation(name)
        validation.validate(op.input_shape, params)
        result = self.control.call(name, validation.modeled(op.input_shape, params))
        # An output with no members is an empty body on AWS (DisconnectUser: "HTTP 200 with an empty
        # response body"), not "{}"; the two deletes have no output shape at all.
        has_members = op.output_shape is not None and bool(op.output_shape.members)
        return op.http.get("responseCode", 200), result if has_members else None


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
