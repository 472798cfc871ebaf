"""The 17 ``ivschat`` operations over the sandbox state (moto's "models" layer).

Each public method is named like the API operation, takes the already-validated request members
and returns the response members. Effects on live chat go through ``LiveChat`` so this module
knows nothing about WebSockets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import formats
from ivs_widgets.sandbox.core import errors, tokens
from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.paging import paginate
from ivs_widgets.sandbox.core.quotas import RateQuotas
from ivs_widgets.sandbox.core.state import LOGGING_CONFIGURATION, ROOM, Resource, State
from ivs_widgets.sandbox.core.state import public as internal_keys_dropped
from ivs_widgets.sandbox.core.tagging import Tagging

Params = dict[str, Any]


class LiveChat(Protocol):
    """What the control plane asks of the messaging server."""

    def send_event(self, room_arn: str, event_name: str, attributes: dict[str, str] | None) -> str: ...
    def delete_message(self, room_arn: str, message_id: str, reason: str | None) -> str: ...
    def disconnect_user(self, room_arn: str, user_id: str, reason: str | None) -> None: ...
    def close_room(self, room_arn: str, reason: str = ...) -> None: ...


class NoLiveChat:
    """Stand-in when no messaging server runs: events have ids but reach nobody."""

    def send_event(self, room_arn: str, event_name: str, attributes: dict[str, str] | None) -> str:
        return formats.new_id()

    def delete_message(self, room_arn: str, message_id: str, reason: str | None) -> str:
        return formats.new_id()

    def disconnect_user(self, room_arn: str, user_id: str, reason: str | None) -> None:
        return None

    def close_room(self, room_arn: str, reason: str = "") -> None:
        return None


#: Members the service leaves out of an answer when they are empty (real CreateRoom outputs omit them).
_OMITTED_WHEN_EMPTY = frozenset({"loggingConfigurationIdentifiers"})


def public(resource: Resource, keys: tuple[str, ...] | None = None) -> Resource:
    """The API view of a stored room or logging configuration: internal keys and the members AWS omits
    when empty dropped, optionally only ``keys``."""
    return {k: v for k, v in internal_keys_dropped(resource, keys).items() if not (k in _OMITTED_WHEN_EMPTY and not v)}


_ROOM_SUMMARY = ("arn", "id", "name", "messageReviewHandler", "createTime", "updateTime", "tags",
                 "loggingConfigurationIdentifiers")


class ControlPlane(Tagging):
    _service = "ivschat"
    _tagged_kinds = (ROOM, LOGGING_CONFIGURATION)

    def __init__(self, state: State, config: SandboxConfig, live: LiveChat | None = None,
                 quotas: RateQuotas | None = None,
                 check_destination: Callable[[Params], None] | None = None) -> None:
        self.state = state
        self.config = config
        self.live: LiveChat = live or NoLiveChat()
        self.quotas = quotas or RateQuotas(config)
        #: Raises the ApiError AWS answers for a logging destination that does not exist; local
        #: folders (the default) need no check.
        self.check_destination = check_destination or (lambda destination: None)

    def call(self, operation: str, p: Params) -> Params:
        """Run ``operation`` as the API does: its rate quota first (ThrottlingException, 429, which
        botocore's retry handlers retry), then the operation itself."""
        if not self.quotas.allow(operation):
            resource = p.get("roomIdentifier") or p.get("identifier") or p.get("resourceArn") or self.config.account_id
            raise errors.throttled(formats.arn_resource_id(resource), self.quotas.limit(operation) or 0, operation)
        result: Params = getattr(self, operation)(p)
        return result

    # -- helpers -----------------------------------------------------------------------------
    def _arn(self, kind: str, resource_id: str) -> str:
        return formats.arn(self.config.region, self.config.account_id, kind, resource_id)

    def _own(self, resource_arn: str) -> None:
        """Refuse an ARN of another account or region as AWS does: IAM denies access to a resource
        that is not the caller's before the service looks for it (403, where a missing one is 404)."""
        region, account = resource_arn.split(":")[3:5]  # the ARN's shape is already validated
        if (account, region) != (self.config.account_id, self.config.region):
            raise errors.access_denied("AccessDeniedException", (
                f"Access denied to {resource_arn}: it belongs to account {account} in {region}, and these "
                f"credentials are account {self.config.account_id}'s in {self.config.region}"))

    def room(self, identifier: str) -> Resource:
        self._own(identifier)
        room = self.state.get(ROOM, identifier)
        if room is None:
            raise errors.not_found(formats.arn_resource_id(identifier), "Room")
        return room

    def _logging_configuration(self, identifier: str) -> Resource:
        self._own(identifier)
        config = self.state.get(LOGGING_CONFIGURATION, identifier)
        if config is None:
            raise errors.not_found(formats.arn_resource_id(identifier), "Logging configuration")
        return config

    def _check_logging_identifiers(self, identifiers: list[str] | None) -> None:
        for identifier in identifiers or []:
            self._logging_configuration(identifier)

    # -- rooms -------------------------------------------------------------------------------
    def CreateRoom(self, p: Params) -> Params:
        if self.state.count(ROOM) >= self.config.quota_rooms:
            raise errors.quota_exceeded(self.config.account_id, self.config.quota_rooms, "rooms")
        self._check_logging_identifiers(p.get("loggingConfigurationIdentifiers"))
        room_id = formats.new_id()
        stamp = formats.iso_millis(formats.now())
        room: Resource = {
            "arn": self._arn(ROOM, room_id), "id": room_id, "name": p.get("name", ""),
            "createTime": stamp, "updateTime": stamp,
            "maximumMessageRatePerSecond": p.get("maximumMessageRatePerSecond",
                                                 c.DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND),
            "maximumMessageLength": p.get("maximumMessageLength", c.DEFAULT_MAXIMUM_MESSAGE_LENGTH),
            "tags": p.get("tags", {}),
            "loggingConfigurationIdentifiers": p.get("loggingConfigurationIdentifiers", []),
        }
        if "messageReviewHandler" in p:
            room["messageReviewHandler"] = _review_handler(p["messageReviewHandler"])
        self.state.put(ROOM, room)
        return public(room)

    def GetRoom(self, p: Params) -> Params:
        return public(self.room(p["identifier"]))

    def UpdateRoom(self, p: Params) -> Params:
        room = self.room(p["identifier"])
        self._check_logging_identifiers(p.get("loggingConfigurationIdentifiers"))
        for key in ("name", "maximumMessageRatePerSecond", "maximumMessageLength",
                    "loggingConfigurationIdentifiers"):
            if key in p:
                room[key] = p[key]
        if "messageReviewHandler" in p:
            room["messageReviewHandler"] = _review_handler(p["messageReviewHandler"])
        room["updateTime"] = formats.iso_millis(formats.now())
        self.state.put(ROOM, room)
        return public(room)

    def DeleteRoom(self, p: Params) -> Params:
        room = self.room(p["identifier"])
        self.state.remove(ROOM, room["arn"])
        self.live.close_room(room["arn"])
        return {}

    def ListRooms(self, p: Params) -> Params:
        if "loggingConfigurationIdentifier" in p:
            self._logging_configuration(p["loggingConfigurationIdentifier"])
        rooms = [
            r for r in self.state.all(ROOM)
            if ("name" not in p or r["name"] == p["name"])
            and ("messageReviewHandlerUri" not in p
                 or r.get("messageReviewHandler", {}).get("uri") == p["messageReviewHandlerUri"])
            and ("loggingConfigurationIdentifier" not in p
                 or p["loggingConfigurationIdentifier"] in r.get("loggingConfigurationIdentifiers", []))
        ]
        page, next_token = paginate(rooms, p, c.DEFAULT_MAX_RESULTS_ROOMS)
        return {"rooms": [public(r, _ROOM_SUMMARY) for r in page], **next_token}

    # -- logging configurations --------------------------------------------------------------
    def CreateLoggingConfiguration(self, p: Params) -> Params:
        if self.state.count(LOGGING_CONFIGURATION) >= self.config.quota_logging_configurations:
            raise errors.quota_exceeded(self.config.account_id, self.config.quota_logging_configurations,
                                        "logging configurations")
        self.check_destination(p["destinationConfiguration"])
        config_id = formats.new_id()
        stamp = formats.iso_millis(formats.now())
        config: Resource = {
            "arn": self._arn(LOGGING_CONFIGURATION, config_id), "id": config_id,
            "name": p.get("name", ""), "createTime": stamp, "updateTime": stamp,
            "destinationConfiguration": p["destinationConfiguration"], "state": "ACTIVE",
            "tags": p.get("tags", {}),
        }
        self.state.put(LOGGING_CONFIGURATION, config)
        return public(config)

    def GetLoggingConfiguration(self, p: Params) -> Params:
        return public(self._logging_configuration(p["identifier"]))

    def UpdateLoggingConfiguration(self, p: Params) -> Params:
        config = self._logging_configuration(p["identifier"])
        if "destinationConfiguration" in p:
            self.check_destination(p["destinationConfiguration"])
        for key in ("name", "destinationConfiguration"):
            if key in p:
                config[key] = p[key]
        config["updateTime"] = formats.iso_millis(formats.now())
        self.state.put(LOGGING_CONFIGURATION, config)
        return public(config)

    def DeleteLoggingConfiguration(self, p: Params) -> Params:
        config = self._logging_configuration(p["identifier"])
        users = [r["id"] for r in self.state.all(ROOM) if config["arn"] in r.get("loggingConfigurationIdentifiers", [])]
        if users:
            raise errors.conflict(config["id"], "Logging configuration is still used by room(s): "
                                  + ", ".join(users))
        self.state.remove(LOGGING_CONFIGURATION, config["arn"])
        return {}

    def ListLoggingConfigurations(self, p: Params) -> Params:
        page, next_token = paginate(self.state.all(LOGGING_CONFIGURATION), p,
                                      c.DEFAULT_MAX_RESULTS_LOGGING_CONFIGURATIONS)
        return {"loggingConfigurations": [public(x) for x in page], **next_token}

    # -- chat --------------------------------------------------------------------------------
    def CreateChatToken(self, p: Params) -> Params:
        room = self.room(p["roomIdentifier"])
        minutes = p.get("sessionDurationInMinutes", c.DEFAULT_SESSION_DURATION_MINUTES)
        return self.mint_token(room["arn"], p["userId"], p.get("capabilities", []), p.get("attributes", {}),
                               session_seconds=minutes * 60)

    def mint_token(self, room_arn: str, user_id: str, capabilities: list[str] | tuple[str, ...] = (),
                   attributes: dict[str, str] | None = None, *, session_seconds: float,
                   token_seconds: float | None = None) -> Params:
        """CreateChatToken's work, with lifetimes in seconds so tests can use short sessions.

        The service states both expiry times in whole seconds (a real 2024 answer: ``…:35.000Z``). They
        are cut down to the second, and the token carries the stated times, so it expires exactly then.
        """
        issued = time.time()
        lifetime = self.config.token_lifetime_seconds if token_seconds is None else token_seconds
        claims = tokens.TokenClaims(
            room_arn=room_arn, user_id=user_id, capabilities=tuple(dict.fromkeys(capabilities)),
            attributes=dict(attributes or {}), issued_at=issued,
            token_expires_at=math.floor(issued + lifetime), session_expires_at=math.floor(issued + session_seconds),
        )
        return {
            "token": tokens.mint(claims, self.state.token_secret),
            "tokenExpirationTime": formats.iso_millis(formats.from_epoch(claims.token_expires_at)),
            "sessionExpirationTime": formats.iso_millis(formats.from_epoch(claims.session_expires_at)),
        }

    def SendEvent(self, p: Params) -> Params:
        room = self.room(p["roomIdentifier"])
        return {"id": self.live.send_event(room["arn"], p["eventName"], p.get("attributes"))}

    def DeleteMessage(self, p: Params) -> Params:
        room = self.room(p["roomIdentifier"])
        return {"id": self.live.delete_message(room["arn"], p["id"], p.get("reason"))}

    def DisconnectUser(self, p: Params) -> Params:
        room = self.room(p["roomIdentifier"])
        self.live.disconnect_user(room["arn"], p["userId"], p.get("reason"))
        return {}

    # -- tags (the operations are Tagging's) ------------------------------------------------
    def _not_found(self, resource_arn: str) -> errors.ApiError:
        self._own(resource_arn)  # another account's ARN: denied before it is looked for, as for rooms
        return errors.not_found(formats.arn_resource_id(resource_arn), "Resource")


def _review_handler(handler: Params) -> Params:
    """The handler as sent, with the default fallback. A ``uri`` of ``""`` detaches the Lambda but the
    handler stays, as GetRoom shows it on AWS (the Terraform provider's acceptance tests rely on it)."""
    return {**handler, "fallbackResult": handler.get("fallbackResult", c.DEFAULT_FALLBACK_RESULT)}
