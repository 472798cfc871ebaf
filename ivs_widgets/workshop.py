"""Workshops: one sandbox on the presenter's laptop, a room full of attendees chatting in it.

The presenter starts a sandbox in workshop mode (``ivs-sandbox --workshop``, or ``start()`` in a
notebook), opens a room to attendees and shares three things: the URL, the room code and the
certificate fingerprint. Attendees ``join(url, code, name)`` and get a chat panel; they never hold
the presenter's credentials, only chat tokens with the capabilities the presenter chose.

    presenter = workshop.start()                          # the presenter's notebook
    room = presenter.client.create_room(name="Workshop")
    invite = presenter.open_room(room["arn"])
    print(presenter.share(invite))

    attendee = workshop.join(url, "K7QX-2M9P", "Ada")      # each attendee's notebook
    attendee.chat_panel()
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivs_widgets.backend import SANDBOX, Backend, OwnsSandbox
from ivs_widgets.chat.room import ChatRoom, ChatToken, TokenProvider
from ivs_widgets.protocol.errors import IvsWidgetsError
from ivs_widgets.protocol.facts import CLIENT_MAX_ATTEMPTS, SANDBOX_REGION
from ivs_widgets.protocol.formats import fingerprint as certificate_fingerprint

#: Requests to the sandbox give up after this many seconds (it is on the local network).
HTTP_TIMEOUT = 10.0


class WorkshopError(IvsWidgetsError):
    """A workshop request failed. ``code`` is the error's name (the sandbox's, e.g.
    ``"ValidationException"``, or ``"ConnectionError"`` / ``"CertificateMismatch"`` when no answer
    could be trusted), ``status`` its HTTP status (None without an answer), ``reason`` and ``fields``
    the sandbox's structured cause and the request members at fault; ``detail`` what the network said."""

    code: str

    def __init__(self, code: str, status: int | None, message: str, *, reason: str = "",
                 fields: Iterable[str] = (), detail: str = "") -> None:
        super().__init__(message, code=code, reason=reason, fields=fields)
        self.status, self.detail = status, detail

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# -- attendees ---------------------------------------------------------------------------------
@dataclass
class Attendee:
    """A seat in a workshop room: who you are there, and how to connect (``chat_panel()``)."""

    url: str
    code: str
    display_name: str
    user_id: str
    room_arn: str
    room_name: str
    capabilities: list[str]
    messaging_url: str
    max_length: int
    playback_url: str | None = None
    ssl: ssl.SSLContext | None = field(default=None, repr=False)
    _seat: str = field(default="", repr=False)
    _first: ChatToken | None = field(default=None, repr=False)

    def token_provider(self) -> TokenProvider:
        """Fresh tokens from the workshop, for this same user (the first one comes from ``join``)."""

        def provide() -> ChatToken:
            if self._first is not None:
                token, self._first = self._first, None
                return token
            answer = _call(self.url, "POST", "join", {"code": self.code, "displayName": self.display_name,
                                                     "userId": self.user_id, "seat": self._seat}, self.ssl)
            return ChatToken.from_response(answer)

        return provide

    def chat_room(self, **options: Any) -> ChatRoom:
        """A ``ChatRoom`` for scripts and async code (``await room.connect()``)."""
        return ChatRoom(self.messaging_url, self.token_provider(), ssl=self.ssl, **options)

    def chat_panel(self, **options: Any) -> Any:
        """A ChatPanel in the workshop room, with the controls your capabilities allow."""
        from ivs_widgets.widgets.chat import ChatPanel

        options.setdefault("title", self.room_name or "Workshop chat")
        return ChatPanel(self.messaging_url, self.token_provider(), capabilities=self.capabilities,
                         max_length=self.max_length, ssl=self.ssl, **options)

    def live_stream_panel(self, playback_url: str | None = None, **options: Any) -> Any:
        """The presenter's stream and the room's chat side by side."""
        from ivs_widgets.widgets.live import LiveStreamPanel

        url = playback_url or self.playback_url
        if not url:
            raise ValueError("this room has no stream: the presenter can open it with a playback_url, "
                             "or pass playback_url= here (or use chat_panel())")
        return LiveStreamPanel(url, chat=self.chat_panel(**options))


def join(url: str, code: str, display_name: str, *, fingerprint: str | None = None) -> Attendee:
    """Join the workshop at ``url`` with the presenter's room ``code`` under ``display_name``.

    For an ``https`` URL, pass the certificate ``fingerprint`` the presenter shared: the sandbox's
    CA is downloaded, checked against it, and then trusted for this workshop only. Without it the
    CA is trusted on first use, with a warning (fine on a network you trust).
    """
    url = url.rstrip("/")
    context = trust(url, fingerprint) if url.startswith("https://") else None
    answer = _call(url, "POST", "join", {"code": code, "displayName": display_name}, context)
    return Attendee(url=url, code=code, display_name=answer["displayName"], user_id=answer["userId"],
                    room_arn=answer["roomArn"], room_name=answer.get("roomName", ""),
                    capabilities=answer["capabilities"], messaging_url=answer["messagingEndpoint"],
                    max_length=answer["maximumMessageLength"], playback_url=answer.get("playbackUrl"),
                    ssl=context, _seat=answer["seat"], _first=ChatToken.from_response(answer))


def trust(url: str, fingerprint: str | None = None) -> ssl.SSLContext:
    """An SSL context trusting the workshop sandbox at ``url`` (checked against ``fingerprint``)."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # only to fetch the CA, which the fingerprint then checks
    pem = _request(urllib.request.Request(f"{url.rstrip('/')}/workshop/certificate"), unverified)
    actual = certificate_fingerprint(pem)
    if fingerprint is None:
        warnings.warn(f"trusting the workshop's certificate {actual} without checking it: pass fingerprint= "
                      "(the presenter shows it) to be sure you reached the presenter's sandbox", stacklevel=3)
    elif _hex(fingerprint) != _hex(actual):
        raise WorkshopError("CertificateMismatch", None, f"the sandbox at {url} shows certificate {actual}, "
                            f"not {fingerprint}: check the URL and fingerprint with the presenter")
    return client_context(pem)


def client_context(trust_pem: bytes) -> ssl.SSLContext:
    """Verify a server against ``trust_pem`` (as well as the system's CAs), host name included."""
    context = ssl.create_default_context(cadata=trust_pem.decode())
    # A certificate you gave may be a leaf with no CA in the store: trust it as its own anchor.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


# -- the presenter ------------------------------------------------------------------------------
class Presenter(OwnsSandbox):
    """The presenter's side of a workshop sandbox: ``ivschat`` (``client``) plus invites, activity, reset.

    Requests are SigV4-signed with the presenter's credentials, exactly like the ``ivschat`` API.
    """

    def __init__(self, url: str, access_key_id: str, secret_access_key: str, region: str = SANDBOX_REGION, *,
                 ca_file: str | None = None, sandbox: Any = None) -> None:
        from botocore.credentials import Credentials

        self.url = url.rstrip("/")
        self.region = region
        self.ca_file = ca_file
        self._trust_pem = Path(ca_file).read_bytes() if ca_file else None
        self.ssl = client_context(self._trust_pem) if self._trust_pem else None
        self.sandbox = sandbox
        self._credentials = Credentials(access_key_id, secret_access_key)
        import boto3
        from botocore.config import Config

        self.client = boto3.client("ivschat", endpoint_url=self.url, region_name=region, verify=ca_file or True,
                                   aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                   config=Config(retries={"mode": "standard", "max_attempts": CLIENT_MAX_ATTEMPTS}))

    @classmethod
    def from_environment(cls) -> Presenter:
        """From the ``export`` lines ``ivs-sandbox --workshop`` prints (``AWS_ENDPOINT_URL_IVSCHAT`` …)."""
        env = os.environ
        missing = [v for v in ("AWS_ENDPOINT_URL_IVSCHAT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if v not in env]
        if missing:
            raise RuntimeError(f"set {', '.join(missing)} (ivs-sandbox prints the export lines)")
        return cls(env["AWS_ENDPOINT_URL_IVSCHAT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                   env.get("AWS_DEFAULT_REGION", SANDBOX_REGION), ca_file=env.get("AWS_CA_BUNDLE"))

    @property
    def fingerprint(self) -> str | None:
        """The certificate fingerprint attendees check (None without TLS).

        The CA file the presenter trusts is the one attendees download; without one, ask the sandbox."""
        if not self.url.startswith("https://"):
            return None
        pem = self._trust_pem or _request(urllib.request.Request(f"{self.url}/workshop/certificate"), self.ssl)
        return certificate_fingerprint(pem)

    @property
    def backend(self) -> Backend:
        """A Backend for the presenter's own panels and the audience simulator (full ``ivschat`` rights)."""
        return Backend(SANDBOX, self.region, self.client, self.activity()["messagingEndpoint"], self.sandbox,
                       ssl=self.ssl)

    def open_room(self, room_arn: str, capabilities: Iterable[str] = ("SEND_MESSAGE",), *,
                  max_tokens: int | None = None, session_duration_minutes: int | None = None,
                  playback_url: str | None = None) -> dict[str, Any]:
        """Let attendees in: returns the invite, whose ``code`` they type to join."""
        body: dict[str, Any] = {"roomIdentifier": room_arn, "capabilities": list(capabilities)}
        for name, value in (("maxTokens", max_tokens), ("sessionDurationInMinutes", session_duration_minutes),
                            ("playbackUrl", playback_url)):
            if value is not None:
                body[name] = value
        return self._signed("POST", "rooms", body)

    def invites(self) -> list[dict[str, Any]]:
        return self._signed("GET", "rooms")["rooms"]

    def close_room(self, code: str) -> dict[str, Any]:
        """Stop letting attendees in with ``code`` and disconnect everyone in its room."""
        return self._signed("POST", f"rooms/{code}/close")

    def activity(self) -> dict[str, Any]:
        """Rooms (connected users, messages per second over the last two minutes, errors), recent
        denials and errors, invites: what the dashboard shows."""
        return self._signed("GET", "activity")

    def reset(self) -> None:
        """Disconnect everyone and delete every room, invite and logging configuration."""
        self._signed("POST", "reset")

    def share(self, invite: dict[str, Any], url: str | None = None) -> str:
        """What to put on the slide: the URL, the room code and the certificate fingerprint."""
        lines = [f"URL:         {url or self.url}", f"Room code:   {invite['code']}"]
        if fingerprint := self.fingerprint:
            lines.append(f"Fingerprint: {fingerprint}")
        return "\n".join(lines)

    def dashboard(self, **options: Any) -> Any:
        """The presenter's dashboard widget for this workshop."""
        from ivs_widgets.widgets.dashboard import PresenterDashboard

        return PresenterDashboard(self, **options)


    def __repr__(self) -> str:
        return f"Presenter({self.url})"

    def _signed(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=f"{self.url}/workshop/{path}", data=data,
                             headers={"Content-Type": "application/json"} if body is not None else {})
        SigV4Auth(self._credentials, "ivschat", self.region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=data if body is not None else None, method=method,
                                          headers=dict(request.headers.items()))
        answer = _request(prepared, self.ssl)
        return json.loads(answer) if answer else None


def start(*, host: str = "127.0.0.1", port: int = 0, state_path: str | None = None, **settings: Any) -> Presenter:
    """Start a workshop sandbox in this process (TLS, presenter credentials) and return its Presenter.

    ``host="0.0.0.0"`` lets attendees on your network in; the default keeps it to this machine.
    """
    from ivs_widgets.sandbox import Sandbox

    sandbox = Sandbox(workshop=True, host=host, port=port, state_path=state_path, **settings).start()
    env = sandbox.environment()
    return Presenter(sandbox.control_endpoint, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                     sandbox.region, ca_file=env.get("AWS_CA_BUNDLE"), sandbox=sandbox)


# -- HTTP -----------------------------------------------------------------------------------------
def _call(url: str, method: str, path: str, body: dict[str, Any], context: ssl.SSLContext | None) -> Any:
    request = urllib.request.Request(f"{url}/workshop/{path}", data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    return json.loads(_request(request, context))


def _request(request: urllib.request.Request, context: ssl.SSLContext | None) -> bytes:
    """Send; an error answer becomes a WorkshopError with the sandbox's own message."""
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=context) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read() or b"{}")
        except ValueError:
            body = {}
        fields = [item.get("name", "") for item in body.get("fieldList", []) if isinstance(item, dict)]
        raise WorkshopError(body.get("__type", "HTTPError"), error.code, body.get("message", str(error)),
                            reason=str(body.get("reason", "")), fields=fields) from None
    except urllib.error.URLError as error:
        raise WorkshopError("ConnectionError", None, f"cannot reach the workshop at {request.full_url}: "
                            f"{error.reason}", detail=str(error.reason)) from None


def _hex(fingerprint: str) -> str:
    return "".join(ch for ch in fingerprint.lower() if ch in "0123456789abcdef")
