"""Workshop invites: rooms a presenter opens to attendees, and the chat tokens attendees get for them.

Attendees never hold the presenter's credentials. The presenter opens a room with the capabilities
attendees may have and a limit on how many tokens may be minted; the sandbox answers with a room
code. Anyone with the code can ``join``: they get a user id of their own, a *seat* (an HMAC of code
and user id, so they can come back for fresh tokens as the same user, and nobody can claim another
user id) and a chat token with exactly the invite's capabilities. Invites live in ``State``, so
``--state`` keeps them across restarts and a reset removes them.

Not an AWS service: the workshop is the sandbox's own, and labelled so wherever it shows. It reaches
live chat only through :class:`LiveRooms` and :class:`ActivityLog`, never through the object that
wires the sandbox together.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from typing import Any, Protocol

from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import formats, rules
from ivs_widgets.sandbox.core import validation
from ivs_widgets.sandbox.core.errors import ApiError, not_found, validation_error
from ivs_widgets.sandbox.core.state import INVITE, ROOM
from ivs_widgets.sandbox.ivschat.models import ControlPlane

#: Room codes: 8 characters without look-alikes (no 0/O, 1/I/L), shown as ``K7QX-2M9P``; 40 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_DISPLAY_NAME = 64
DEFAULT_MAX_TOKENS = 500
#: Upper bound on an invite's token limit: a typo should not open a room to a million tokens.
MAX_TOKENS_LIMIT = 100_000
_SLUG = re.compile(r"[^a-z0-9]+")


class LiveRooms(Protocol):
    """What the workshop asks of live chat (the messaging service); safe to call from any thread."""

    def close_room(self, room_arn: str, reason: str = ...) -> None: ...
    def close_all(self, reason: str) -> None: ...
    def users(self, room_arn: str) -> list[dict[str, Any]]: ...


class ActivityLog(Protocol):
    """Message rates and recent denials (the messaging service's ``Activity``)."""

    def error(self, kind: str, code: int, message: str, room_arn: str = ..., user_id: str = ...) -> None: ...
    def room(self, room_arn: str) -> dict[str, Any]: ...
    def recent_errors(self) -> list[dict[str, Any]]: ...
    def forget(self) -> None: ...


def check_invite(capabilities: list[str], max_tokens: int, session_duration_minutes: int | None = None,
                 room_identifier: str = "arn:aws:ivschat:us-east-1:123456789012:room/workshop") -> None:
    """Raise the ValidationException for settings an invite cannot have: room, capabilities and session
    length by CreateChatToken's own model rules, the token limit by ours."""
    token_request: dict[str, Any] = {"roomIdentifier": room_identifier, "userId": "attendee",
                                     "capabilities": capabilities}
    if session_duration_minutes is not None:
        token_request["sessionDurationInMinutes"] = session_duration_minutes
    validation.validate(validation.operation("CreateChatToken").input_shape, token_request)
    if type(max_tokens) is not int or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise validation_error(f"maxTokens must be an integer from 1 to {MAX_TOKENS_LIMIT}", field="maxTokens")


def normalize_code(code: str) -> str:
    """What attendees type, made comparable: case, spaces and dashes do not matter."""
    return re.sub(r"[\s-]", "", code).upper()


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


class Workshop:
    """Open, list, close and join invites. Thread-safe (the HTTP handlers and notebooks share it)."""

    def __init__(self, control: ControlPlane, live: LiveRooms, activity: ActivityLog) -> None:
        self.control = control
        self.state = control.state
        self.live = live
        self.activity_log = activity
        self._lock = threading.Lock()

    # -- the presenter's side ----------------------------------------------------------------
    def open_room(self, room_identifier: str, capabilities: list[str], max_tokens: int = DEFAULT_MAX_TOKENS,
                  session_duration_minutes: int | None = None, playback_url: str | None = None) -> dict[str, Any]:
        """Open a room to attendees; returns the invite (with its ``code``)."""
        check_invite(capabilities, max_tokens, session_duration_minutes, room_identifier)
        room = self.control.room(room_identifier)
        minutes = session_duration_minutes or c.DEFAULT_SESSION_DURATION_MINUTES
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        invite = {"arn": code, "code": format_code(code), "roomArn": room["arn"], "roomName": room.get("name", ""),
                  "capabilities": list(dict.fromkeys(capabilities)), "maxTokens": max_tokens, "tokensMinted": 0,
                  "sessionDurationInMinutes": minutes, "open": True, "createTime": formats.iso_millis(formats.now())}
        if playback_url:
            invite["playbackUrl"] = playback_url
        self.state.put(INVITE, invite)
        return _public(invite)

    def invites(self) -> list[dict[str, Any]]:
        """Every invite, newest first."""
        return [_public(invite) for invite in self.state.all(INVITE)]

    def invite(self, code: str) -> dict[str, Any]:
        found = self.state.get(INVITE, normalize_code(code))
        if found is None:
            raise not_found(code, "Room code")
        return found

    def close(self, code: str) -> dict[str, Any]:
        """Stop minting tokens for the invite and disconnect everyone in its room."""
        invite = self._change(code, open=False)
        self.live.close_room(invite["roomArn"], "the presenter closed the room")
        return invite

    def reset(self) -> None:
        """Back to an empty sandbox between workshop runs: everyone disconnected, every room, invite
        and logging configuration gone. Credentials, the CA and review handlers stay."""
        self.live.close_all("the sandbox was reset")
        self.state.reset()
        self.activity_log.forget()

    def activity(self) -> dict[str, Any]:
        """Rooms with their connected users, message rates and error counts; the latest errors; invites."""
        rooms = []
        for room in self.state.all(ROOM):
            users = self.live.users(room["arn"])
            rooms.append({"roomArn": room["arn"], "name": room.get("name", ""), "users": users,
                          "connections": sum(user["connections"] for user in users),
                          "maximumMessageRatePerSecond": room["maximumMessageRatePerSecond"],
                          **self.activity_log.room(room["arn"])})
        return {"rooms": rooms, "recentErrors": self.activity_log.recent_errors(), "invites": self.invites()}

    def set_playback_url(self, code: str, playback_url: str) -> dict[str, Any]:
        """Point the invite at another stream (a restarted test stream listens on a new port)."""
        return self._change(code, playbackUrl=playback_url)

    def _change(self, code: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            invite = {**self.invite(code), **fields}
            self.state.put(INVITE, invite, updated=False)
        return _public(invite)

    # -- the attendee's side -----------------------------------------------------------------
    def join(self, code: str, display_name: str, user_id: str | None = None, seat: str | None = None) -> dict[str, Any]:
        """A chat token for an attendee: a new user, or a returning one proving it with its seat.
        A refusal is also recorded for the presenter's dashboard."""
        try:
            return self._join(code, display_name, user_id, seat)
        except ApiError as error:
            self.activity_log.error("join", error.status, error.message)
            raise

    def _join(self, code: str, display_name: str, user_id: str | None, seat: str | None) -> dict[str, Any]:
        for name, value in (("userId", user_id), ("seat", seat)):
            if value is not None and not rules.is_unicode(value):  # JSON can spell a lone surrogate, UTF-8 cannot
                raise validation_error(f"{name} must be valid Unicode", field=name)
        display_name = display_name.strip()
        problem = rules.display_name_problem(display_name, MAX_DISPLAY_NAME)
        if problem:
            raise validation_error(f"displayName {problem}", field="displayName")
        with self._lock:
            invite = self.invite(code)
            if not invite["open"]:
                raise ApiError("AccessDeniedException", 403, "The presenter has closed this room")
            if user_id is None:
                user_id = f"{_SLUG.sub('-', display_name.lower()).strip('-')[:24] or 'guest'}-{secrets.token_hex(3)}"
            elif not hmac.compare_digest((seat or "").encode(), self._seat(invite["arn"], user_id).encode()):
                raise ApiError("AccessDeniedException", 403, "This seat does not belong to that user id")
            if invite["tokensMinted"] >= invite["maxTokens"]:
                raise ApiError("ServiceQuotaExceededException", 402,
                               f"Room code {invite['code']} has used all of its {invite['maxTokens']} chat tokens: "
                               "ask the presenter to open the room again", limit=invite["maxTokens"])
            if self.state.get(ROOM, invite["roomArn"]) is None:
                raise not_found(invite["roomArn"])
            token = self.control.mint_token(invite["roomArn"], user_id, invite["capabilities"],
                                            {"displayName": display_name},
                                            session_seconds=invite["sessionDurationInMinutes"] * 60)
            invite["tokensMinted"] += 1
            self.state.put(INVITE, invite, updated=False)
        return {**token, "userId": user_id, "seat": self._seat(invite["arn"], user_id), "displayName": display_name,
                **{k: invite[k] for k in ("roomArn", "roomName", "capabilities", "code", "playbackUrl") if k in invite}}

    def _seat(self, code: str, user_id: str) -> str:
        return hmac.new(self.state.token_secret, f"seat\0{code}\0{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _public(invite: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in invite.items() if not k.startswith("_") and k != "arn"}
