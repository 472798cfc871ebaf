"""The workshop's HTTP routes, next to the ``ivschat`` API on the same port.

``POST /workshop/join`` and ``GET /workshop/certificate`` are open to anyone who can reach the
sandbox: the room code is the attendee's only credential. Everything else is the presenter's and
must be SigV4-signed with the presenter's credentials, like the ``ivschat`` API itself:

=======  ===========================  ================================================
POST     /workshop/rooms              open a room to attendees → the invite (its code)
GET      /workshop/rooms              every invite
POST     /workshop/rooms/CODE/close   stop minting tokens and disconnect the room
GET      /workshop/activity           rooms, connected users, message rates, errors
POST     /workshop/reset              delete every room, invite and logging configuration
=======  ===========================  ================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivs_widgets.sandbox.control import auth, validation
from ivs_widgets.sandbox.control.errors import ApiError, validation_error
from ivs_widgets.sandbox.control.http import JsonApiHandler
from ivs_widgets.sandbox.control.operations import ControlPlane
from ivs_widgets.sandbox.workshop import DEFAULT_MAX_TOKENS

if TYPE_CHECKING:
    from ivs_widgets.sandbox.server import Sandbox

ROUTE = r"/workshop/(.*)"
#: Upper bound on an invite's token limit: a typo should not open a room to a million tokens.
MAX_TOKENS_LIMIT = 100_000


class WorkshopHandler(JsonApiHandler):
    def initialize(self, control: ControlPlane, sandbox: Sandbox) -> None:  # type: ignore[override]
        super().initialize(control)
        self.sandbox = sandbox

    def _handle(self, path: str) -> tuple[int, Any]:
        body = self._body()
        method = self.request.method or ""
        workshop = self.sandbox.workshop
        if (method, path) == ("GET", "certificate"):
            if self.sandbox.certificate is None:
                raise ApiError("ResourceNotFoundException", 404, "This sandbox does not use TLS")
            self.set_header("Content-Type", "application/x-pem-file")
            return 200, self.sandbox.certificate.trust_pem
        if (method, path) == ("POST", "join"):
            params = self._parse_body(body)
            code, name = _string(params, "code"), _string(params, "displayName")
            user_id = seat = None  # a first join; a returning attendee proves its user id with its seat
            if params.get("userId") is not None:
                user_id, seat = _string(params, "userId"), _string(params, "seat")
            try:
                joined = workshop.join(code, name, user_id, seat)
            except ApiError as error:
                self.sandbox.messaging.activity.error("join", error.status, error.message)
                raise
            # Attendees reach messaging by the same name they reached us by (an address on their network).
            return 200, {**joined, "messagingEndpoint": self.sandbox.messaging_endpoint_for(self.request.host_name),
                         "maximumMessageLength": self.control.room(joined["roomArn"])["maximumMessageLength"]}
        if self.control.config.require_signature:
            auth.verify(self.control.config, method, self.request.uri or "", self.request.headers, body)
        segments = path.split("/")
        if (method, path) == ("POST", "rooms"):
            return 200, self._open_room(self._parse_body(body))
        if (method, path) == ("GET", "rooms"):
            return 200, {"rooms": workshop.invites()}
        if method == "POST" and len(segments) == 3 and segments[0] == "rooms" and segments[2] == "close":
            return 200, self.sandbox.close_invite(segments[1])
        if (method, path) == ("GET", "activity"):
            return 200, {**self.sandbox.activity(),
                         "messagingEndpoint": self.sandbox.messaging_endpoint_for(self.request.host_name)}
        if (method, path) == ("POST", "reset"):
            self.sandbox.reset()
            return 204, None
        raise validation_error(f"Unknown operation: {method} /workshop/{path}", reason="UNKNOWN_OPERATION")

    def _open_room(self, params: dict[str, Any]) -> dict[str, Any]:
        """Capabilities and session length are checked by CreateChatToken's own model rules."""
        room = _string(params, "roomIdentifier")
        capabilities = params.get("capabilities", ["SEND_MESSAGE"])
        minutes = params.get("sessionDurationInMinutes")
        token_request: dict[str, Any] = {"roomIdentifier": room, "userId": "attendee", "capabilities": capabilities}
        if minutes is not None:
            token_request["sessionDurationInMinutes"] = minutes
        validation.validate(validation.operation("CreateChatToken").input_shape, token_request)
        max_tokens = params.get("maxTokens", DEFAULT_MAX_TOKENS)
        if type(max_tokens) is not int or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise validation_error(f"maxTokens must be an integer from 1 to {MAX_TOKENS_LIMIT}", field="maxTokens")
        playback = params.get("playbackUrl")
        if playback is not None and not isinstance(playback, str):
            raise validation_error("playbackUrl must be a string", field="playbackUrl")
        return self.sandbox.workshop.open_room(room, capabilities, max_tokens, minutes, playback)


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise validation_error(f"{name} is required and must be a string", field=name)
    return value


def routes(sandbox: Sandbox) -> tuple[str, type[JsonApiHandler], dict[str, Any]]:
    return ROUTE, WorkshopHandler, {"control": sandbox.control, "sandbox": sandbox}
