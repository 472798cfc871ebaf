"""Every frame of the IVS Chat messaging protocol as a dataclass, and the only JSON (de)serialisation.

Server → client: ``MESSAGE``, ``EVENT`` (with the ``aws:DELETE_MESSAGE`` and ``aws:DISCONNECT_USER``
system events as their own types) and ``ERROR``. Client → server: the three requests. Parsing is
tolerant the way the service is: any key case in requests, ``null`` or missing optional members.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivs_widgets.protocol.errors import IvsWidgetsError
from ivs_widgets.protocol.formats import parse_time
from ivs_widgets.protocol.rules import is_string_map, is_unicode

DELETE_MESSAGE_EVENT = "aws:DELETE_MESSAGE"
DISCONNECT_USER_EVENT = "aws:DISCONNECT_USER"

Attributes = dict[str, str]


class FrameError(IvsWidgetsError, ValueError):
    """A frame that breaks the protocol; ``code`` is the ERROR code the service answers with."""

    code: int

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message, code=code)


# -- server → client -------------------------------------------------------------------------
@dataclass(frozen=True)
class Sender:
    user_id: str
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class ChatMessage:
    id: str
    content: str
    sender: Sender
    send_time: str
    request_id: str = ""
    attributes: Attributes | None = None
    type = "MESSAGE"

    @property
    def sent_at(self) -> datetime:
        return parse_time(self.send_time)


@dataclass(frozen=True)
class ChatEvent:
    id: str
    event_name: str
    send_time: str
    request_id: str = ""
    attributes: Attributes | None = None
    type = "EVENT"

    @property
    def sent_at(self) -> datetime:
        return parse_time(self.send_time)


@dataclass(frozen=True)
class DeleteMessageEvent(ChatEvent):
    """``aws:DELETE_MESSAGE``: a moderator removed ``message_id``."""

    @property
    def message_id(self) -> str:
        attrs = self.attributes or {}
        return attrs.get("MessageId") or attrs.get("MessageID", "")

    @property
    def reason(self) -> str:
        return (self.attributes or {}).get("Reason", "")


@dataclass(frozen=True)
class DisconnectUserEvent(ChatEvent):
    """``aws:DISCONNECT_USER``: every connection of ``user_id`` is being closed."""

    @property
    def user_id(self) -> str:
        return (self.attributes or {}).get("UserId", "")

    @property
    def reason(self) -> str:
        return (self.attributes or {}).get("Reason", "")


@dataclass(frozen=True)
class ChatErrorFrame:
    id: str
    error_code: int
    error_message: str
    request_id: str = ""
    type = "ERROR"


Frame = ChatMessage | ChatEvent | ChatErrorFrame


# -- client → server -------------------------------------------------------------------------
@dataclass(frozen=True)
class SendMessageRequest:
    content: str
    attributes: Attributes | None = None
    request_id: str = ""
    action = "SEND_MESSAGE"


@dataclass(frozen=True)
class DeleteMessageRequest:
    id: str
    reason: str | None = None
    request_id: str = ""
    action = "DELETE_MESSAGE"


@dataclass(frozen=True)
class DisconnectUserRequest:
    user_id: str
    reason: str | None = None
    request_id: str = ""
    action = "DISCONNECT_USER"


Request = SendMessageRequest | DeleteMessageRequest | DisconnectUserRequest


# -- serialisation ---------------------------------------------------------------------------
def to_wire(item: Frame | Request) -> dict[str, Any]:
    """The JSON object for a frame or request, with every field the service always sends."""
    if isinstance(item, ChatMessage):
        return {"Type": "MESSAGE", "Id": item.id, "RequestId": item.request_id, "Attributes": item.attributes,
                "Content": item.content, "SendTime": item.send_time,
                "Sender": {"UserId": item.sender.user_id, "Attributes": item.sender.attributes}}
    if isinstance(item, ChatEvent):
        return {"Type": "EVENT", "Id": item.id, "RequestId": item.request_id, "Attributes": item.attributes,
                "EventName": item.event_name, "SendTime": item.send_time}
    if isinstance(item, ChatErrorFrame):
        return {"Type": "ERROR", "Id": item.id, "RequestId": item.request_id, "ErrorCode": item.error_code,
                "ErrorMessage": item.error_message}
    if isinstance(item, SendMessageRequest):
        return _drop_none({"Action": item.action, "RequestId": item.request_id or None,
                           "Content": item.content, "Attributes": item.attributes})
    if isinstance(item, DeleteMessageRequest):
        return _drop_none({"Action": item.action, "RequestId": item.request_id or None, "Id": item.id,
                           "Reason": item.reason})
    if isinstance(item, DisconnectUserRequest):
        return _drop_none({"Action": item.action, "RequestId": item.request_id or None,
                           "UserId": item.user_id, "Reason": item.reason})
    raise TypeError(f"not a frame or request: {item!r}")


def dumps(item: Frame | Request) -> str:
    return json.dumps(to_wire(item), ensure_ascii=False, separators=(",", ":"))


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _attributes(value: Any, what: str) -> Attributes | None:
    if value is None:
        return None
    if not is_string_map(value):
        raise FrameError(f"{what} must be an object whose values are strings")
    if not all(is_unicode(k) and is_unicode(v) for k, v in value.items()):
        raise FrameError(f"{what} must be valid Unicode (no lone surrogates)")
    return value


def _text(data: dict[str, Any], key: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise FrameError(f"missing {key}")
        return ""
    if not isinstance(value, str):
        raise FrameError(f"{key} must be a string")
    if not is_unicode(value):
        raise FrameError(f"{key} must be valid Unicode (no lone surrogates)")
    return value


def from_wire(data: Any) -> Frame:
    """A server frame from its decoded JSON; raises FrameError for anything else."""
    if not isinstance(data, dict):
        raise FrameError("frame must be a JSON object")
    kind = data.get("Type")
    request_id = _text(data, "RequestId", required=False)
    if kind == "MESSAGE":
        sender = data.get("Sender")
        if not isinstance(sender, dict):
            raise FrameError("MESSAGE without Sender")
        return ChatMessage(id=_text(data, "Id"), content=_text(data, "Content"), send_time=_text(data, "SendTime"),
                           request_id=request_id, attributes=_attributes(data.get("Attributes"), "Attributes"),
                           sender=Sender(_text(sender, "UserId"),
                                         _attributes(sender.get("Attributes"), "Sender.Attributes") or {}))
    if kind == "EVENT":
        name = _text(data, "EventName")
        cls = {DELETE_MESSAGE_EVENT: DeleteMessageEvent, DISCONNECT_USER_EVENT: DisconnectUserEvent}.get(name, ChatEvent)
        return cls(id=_text(data, "Id"), event_name=name, send_time=_text(data, "SendTime"), request_id=request_id,
                   attributes=_attributes(data.get("Attributes"), "Attributes"))
    if kind == "ERROR":
        code = data.get("ErrorCode")
        if not isinstance(code, int) or isinstance(code, bool):
            raise FrameError("ErrorCode must be a number")
        return ChatErrorFrame(id=_text(data, "Id"), error_code=code, request_id=request_id,
                              error_message=_text(data, "ErrorMessage", required=False))
    raise FrameError(f"unknown frame Type {kind!r}")


def loads(text: str | bytes) -> Frame:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"frame is not JSON: {exc}") from None
    return from_wire(data)


def parse_request(text: str | bytes) -> Request:
    """A client request as the service reads it: keys in any case, unknown keys ignored."""
    if isinstance(text, bytes):
        raise FrameError("binary frames are not supported; send JSON text")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
        raise FrameError("request is not valid JSON") from None
    if not isinstance(raw, dict):
        raise FrameError("request must be a JSON object")
    data = {str(k).lower(): v for k, v in raw.items()}
    request_id = _text({"RequestId": data.get("requestid")}, "RequestId", required=False)
    action = data.get("action")
    fields = {"Content": data.get("content"), "Id": data.get("id"), "UserId": data.get("userid"),
              "Reason": data.get("reason")}
    if action == "SEND_MESSAGE":
        return SendMessageRequest(content=_text(fields, "Content"), request_id=request_id,
                                  attributes=_attributes(data.get("attributes"), "Attributes"))
    if action == "DELETE_MESSAGE":
        return DeleteMessageRequest(id=_text(fields, "Id"), request_id=request_id,
                                    reason=_text(fields, "Reason", required=False) or None)
    if action == "DISCONNECT_USER":
        return DisconnectUserRequest(user_id=_text(fields, "UserId"), request_id=request_id,
                                     reason=_text(fields, "Reason", required=False) or None)
    raise FrameError(f"unknown Action {action!r}")


def request_id_of(text: str | bytes) -> str:
    """Best-effort RequestId of a request that failed to parse, so its ERROR can echo it."""
    try:
        raw = json.loads(text)
        for key, value in raw.items():
            if str(key).lower() == "requestid" and isinstance(value, str) and is_unicode(value):
                return value
    except (ValueError, AttributeError, TypeError, RecursionError):
        pass
    return ""
