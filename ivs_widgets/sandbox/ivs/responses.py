"""The ``ivs`` API over HTTP (rest-json), on the port the ``ivschat`` API uses.

Routing, SigV4 (scoped to ``ivs``), validation against botocore's ``ivs`` model and the error
format are the same as for every API the sandbox serves (:mod:`ivs_widgets.sandbox.core.operations`).
An operation the control plane does not implement answers ``NotImplemented`` (HTTP 501).
"""

from __future__ import annotations

from typing import Any

from ivs_widgets.sandbox.core.errors import ApiError
from ivs_widgets.sandbox.core.operations import Api
from ivs_widgets.sandbox.ivs.models import VideoControlPlane


def error_body(error: ApiError) -> dict[str, Any]:
    """``ivs`` errors carry their sentence as ``exceptionMessage`` (the one member its model gives them);
    ``message`` too, which botocore shows as the error's message."""
    return {"__type": error.code, "message": error.message, "exceptionMessage": error.message}


def api(video: VideoControlPlane) -> Api:
    return Api("ivs", video, error_body)
