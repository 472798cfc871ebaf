"""``ivs`` errors: the names and HTTP statuses botocore's ``ivs`` model gives them."""

from __future__ import annotations

from ivs_widgets.sandbox.core.errors import ApiError
from ivs_widgets.sandbox.core.validation import service_model


def error(code: str, message: str) -> ApiError:
    """The modeled ``ivs`` error ``code`` (``ResourceNotFoundException``, ``ChannelNotBroadcasting`` …)."""
    return ApiError(code, service_model("ivs").shape_for(code).metadata["error"]["httpStatusCode"], message)


def not_found(what: str, arn: str) -> ApiError:
    return error("ResourceNotFoundException", f"{what} not found: {arn}")


def not_broadcasting(channel_arn: str) -> ApiError:
    return error("ChannelNotBroadcasting", f"The stream is offline for the given channel ARN: {channel_arn}")
