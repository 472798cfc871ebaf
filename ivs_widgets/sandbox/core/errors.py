"""Control-plane errors in the wire shape botocore parses (status, ``x-amzn-ErrorType``, body)."""

from __future__ import annotations

from typing import Any

from ivs_widgets.protocol.errors import IvsWidgetsError


class ApiError(IvsWidgetsError):
    """An error response: its name (``code``), HTTP status, message and the modeled members of that
    error (``members``: ``reason``, ``fieldList``, ``resourceId`` … as the service model names them)."""

    code: str

    def __init__(self, code: str, status: int, message: str, **members: Any) -> None:
        fields = [item["name"] for item in members.get("fieldList", [])]
        super().__init__(message, code=code, reason=members.get("reason", ""), fields=fields)
        self.status = status
        self.members = members

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.members}


def validation_error(message: str, field: str | None = None, reason: str = "FIELD_VALIDATION_FAILED") -> ApiError:
    """ValidationException; ``field`` names the member in ``fieldList`` as the service does."""
    fields: dict[str, Any] = {"reason": reason}
    if field is not None:
        fields["fieldList"] = [{"name": field, "message": message}]
    return ApiError("ValidationException", 400, message, **fields)


def not_found(resource_id: str, what: str = "Room") -> ApiError:
    # The model's ResourceType enum has one value, ROOM, used for every resource kind.
    return ApiError("ResourceNotFoundException", 404, f"{what} not found: {resource_id}",
                    resourceId=resource_id, resourceType="ROOM")


def conflict(resource_id: str, message: str) -> ApiError:
    return ApiError("ConflictException", 409, message, resourceId=resource_id, resourceType="ROOM")


def quota_exceeded(resource_id: str, limit: int, what: str) -> ApiError:
    return ApiError("ServiceQuotaExceededException", 402,
                    f"Service quota exceeded: at most {limit} {what} per account per region",
                    resourceId=resource_id, resourceType="ROOM", limit=limit)


def throttled(resource_id: str, limit: int, operation: str) -> ApiError:
    return ApiError("ThrottlingException", 429, f"Rate exceeded: {operation} allows {limit} requests per second",
                    resourceId=resource_id, resourceType="ROOM", limit=limit)


def not_available(service: str, operation: str) -> ApiError:
    """An operation of the service's model that the sandbox does not offer: the sandbox's own answer,
    ``NotImplemented`` with HTTP 501 (S3's name for it; SDKs do not retry a 501)."""
    return ApiError("NotImplemented", 501, f"{service} {operation} is not available in the ivs-widgets sandbox")


def access_denied(code: str, message: str) -> ApiError:
    """Authentication failures; AWS names them outside the model (e.g. InvalidSignatureException)."""
    return ApiError(code, 403, message)
