"""The AWS APIs the sandbox serves on one HTTP port, each routed by its botocore model (moto's "urls" layer).

``ivschat`` and ``ivs`` share the port: their paths differ but for ``/tags/{resourceArn}``. A request
goes to the API its SigV4 credential scope names (what every SDK signs with); a request without one
goes to the API whose model has its path (for ``/tags/ARN``, the service the ARN names), else to the
first API. It is then authenticated for that API, parsed, validated against its model and dispatched
to its control plane: whatever goes wrong, the client gets an error botocore can parse, never a
traceback or a hung request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import tornado.web

from ivs_widgets.sandbox.core import auth, validation
from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.errors import ApiError, not_available, validation_error
from ivs_widgets.sandbox.core.json_api import JsonApiHandler

log = logging.getLogger("ivs_widgets.sandbox.control")

#: (method, first path segment) → (operation, the member its second segment fills, if any).
Routes = dict[tuple[str, str], tuple[str, str | None]]


class Api:
    """One AWS API: its service name (botocore model and SigV4 signing name) and its control plane, whose
    methods are named like the operations. An operation of the model that the control plane lacks is
    answered with :func:`~ivs_widgets.sandbox.core.errors.not_available`."""

    def __init__(self, service: str, control: object,
                 error_body: Callable[[ApiError], dict[str, Any]] = ApiError.body,
                 dispatch: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.service = service
        self.control = control
        #: Runs an operation given its name and parameters: the control plane's method unless the service
        #: puts something in front (``ivschat``'s rate quotas).
        self.dispatch = dispatch or (lambda name, params: getattr(control, name)(params))
        #: The error body on the wire: the members the service's model gives its errors.
        self.error_body = error_body
        self.routes = _routes(service)


@cache
def _routes(service: str) -> Routes:
    """Built from the model, so paths are never retyped."""
    routes: Routes = {}
    for name in validation.service_model(service).operation_names:
        http = validation.operation(name, service).http
        first, _, label = http["requestUri"].lstrip("/").partition("/")
        routes[(http["method"], first)] = (name, label.strip("{}") or None)
    return routes


class OperationHandler(JsonApiHandler):
    """One handler for every API path: routing, auth, validation and errors are the same for all."""

    def initialize(self, config: SandboxConfig, apis: dict[str, Api]) -> None:  # type: ignore[override]
        super().initialize(config)
        self.apis = apis
        self.api = next(iter(apis.values()))

    def _handle(self, path: str) -> tuple[int, Any]:
        method = self.request.method or ""
        first, _, rest = path.partition("/")
        self.api = self._api_for(method, first, rest)
        body = self._body()
        found = self.api.routes.get((method, first))
        if found is None or (found[1] is None) != (rest == ""):
            raise validation_error(f"Unknown operation: {method} /{path}", reason="UNKNOWN_OPERATION")
        name, label = found
        if self.config.require_signature:
            auth.verify(self.config, self.api.service, method, self.request.uri or "", self.request.headers, body)
        if not hasattr(self.api.control, name):
            raise not_available(self.api.service, name)
        op = validation.operation(name, self.api.service)
        params = self._parse_body(body) if method != "GET" and method != "DELETE" else {}
        if label is not None:
            params[label] = rest  # tornado has percent-decoded the path
        for member, shape in op.input_shape.members.items():
            if shape.serialization.get("location") == "querystring":  # lists (tagKeys) in these models
                params[member] = [_utf8(value, member)
                                  for value in self.request.query_arguments.get(shape.serialization["name"], [])]
        validation.validate(op.input_shape, params)
        result = self.api.dispatch(name, validation.modeled(op.input_shape, params))
        # An output with no members is an empty body on AWS (ivschat's DisconnectUser: "HTTP 200 with an
        # empty response body"), not "{}"; some operations have no output shape at all.
        has_members = op.output_shape is not None and bool(op.output_shape.members)
        return op.http.get("responseCode", 200), result if has_members else None

    def _api_for(self, method: str, first: str, rest: str) -> Api:
        signed = auth.signing_service(self.request.headers)
        if signed is not None and signed in self.apis:
            return self.apis[signed]
        if rest:  # /tags/ARN: the service the ARN names
            parts = rest.split(":")
            owner = parts[2] if len(parts) > 2 else None
        else:
            owner = next((service for service, api in self.apis.items() if (method, first) in api.routes), None)
        return self.apis.get(owner or "", self.api)

    def _error_body(self, error: ApiError) -> dict[str, Any]:
        return self.api.error_body(error)


def _utf8(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise validation_error(f"{name} must be UTF-8", field=name) from None


def application(config: SandboxConfig, apis: list[Api],
                *extra: tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]) -> tornado.web.Application:
    """``apis`` on every path, after ``extra`` routes (the workshop's under ``/workshop/``, live video's under
    ``/ivs/``)."""
    # The raw path is routed as one string: tornado must not split the percent-encoded ARN.
    handler = {"config": config, "apis": {api.service: api for api in apis}}
    return tornado.web.Application([*extra, (r"/(.*)", OperationHandler, handler)],
                                   compress_response=False, log_function=_log_request)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Errors are answers here, not incidents: log every request at debug level only."""
    log.debug("%d %s %.1fms", handler.get_status(), handler._request_summary(), 1000 * handler.request.request_time())
