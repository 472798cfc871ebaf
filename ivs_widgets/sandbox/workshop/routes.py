"""The workshop's HTTP routes, next to the ``ivschat`` API on the same port (not an AWS API).

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

import re
from collections.abc import Callable
from typing import Any

from ivs_widgets.sandbox.core import auth
from ivs_widgets.sandbox.core.errors import ApiError, validation_error
from ivs_widgets.sandbox.core.json_api import JsonApiHandler
from ivs_widgets.sandbox.workshop.models import DEFAULT_MAX_TOKENS, Workshop

ROUTE = r"/workshop/(.*)"
_CLOSE = re.compile(r"rooms/([^/]+)/close")


class WorkshopHandler(JsonApiHandler):
    """Routes ``/workshop/...`` to the :class:`Workshop` service."""

    def initialize(self, workshop: Workshop, trust_pem: Callable[[], bytes | None],  # type: ignore[override]
                   messaging_endpoint_for: Callable[[str], str]) -> None:
        super().initialize(workshop.control.config)
        self.workshop = workshop
        self.trust_pem = trust_pem
        self.messaging_endpoint_for = messaging_endpoint_for

    def _handle(self, path: str) -> tuple[int, Any]:
        body = self._body()
        method = self.request.method or ""
        workshop = self.workshop
        if (method, path) == ("GET", "certificate"):
            pem = self.trust_pem()
            if pem is None:
                raise ApiError("ResourceNotFoundException", 404, "This sandbox does not use TLS")
            self.set_header("Content-Type", "application/x-pem-file")
            return 200, pem
        if (method, path) == ("POST", "join"):
            params = self._parse_body(body)
            code, name = _string(params, "code"), _string(params, "displayName")
            user_id = seat = None  # a first join; a returning attendee proves its user id with its seat
            if params.get("userId") is not None:
                user_id, seat = _string(params, "userId"), _string(params, "seat")
            joined = workshop.join(code, name, user_id, seat)
            # Attendees reach messaging by the same name they reached us by (an address on their network).
            return 200, {**joined, "messagingEndpoint": self.messaging_endpoint_for(self.request.host_name),
                         "maximumMessageLength": workshop.control.room(joined["roomArn"])["maximumMessageLength"]}
        if self.config.require_signature:
            auth.verify(self.config, "ivschat", method, self.request.uri or "", self.request.headers, body)
        if (method, path) == ("POST", "rooms"):
            return 200, self._open_room(self._parse_body(body))
        if (method, path) == ("GET", "rooms"):
            return 200, {"rooms": workshop.invites()}
        closing = _CLOSE.fullmatch(path)
        if method == "POST" and closing:
            return 200, workshop.close(closing[1])
        if (method, path) == ("GET", "activity"):
            return 200, {**workshop.activity(), "messagingEndpoint": self.messaging_endpoint_for(self.request.host_name)}
        if (method, path) == ("POST", "reset"):
            workshop.reset()
            return 204, None
        raise validation_error(f"Unknown operation: {method} /workshop/{path}", reason="UNKNOWN_OPERATION")

    def _open_room(self, params: dict[str, Any]) -> dict[str, Any]:
        playback = params.get("playbackUrl")
        if playback is not None and not isinstance(playback, str):
            raise validation_error("playbackUrl must be a string", field="playbackUrl")
        return self.workshop.open_room(_string(params, "roomIdentifier"), params.get("capabilities", ["SEND_MESSAGE"]),
                                       params.get("maxTokens", DEFAULT_MAX_TOKENS),
                                       params.get("sessionDurationInMinutes"), playback)


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise validation_error(f"{name} is required and must be a string", field=name)
    return value


def route(workshop: Workshop, trust_pem: Callable[[], bytes | None],
          messaging_endpoint_for: Callable[[str], str]) -> tuple[str, type[JsonApiHandler], dict[str, Any]]:
    return ROUTE, WorkshopHandler, {"workshop": workshop, "trust_pem": trust_pem,
                                    "messaging_endpoint_for": messaging_endpoint_for}
