"""The one switch: the local sandbox (default) or Amazon IVS Chat on AWS.

A notebook's first cell is ``backend = ivs_widgets.backend.connect()``; everything after it is the
same for both. ``IVS_BACKEND=aws`` (or ``connect("aws")``) uses the standard AWS configuration
(region, credentials, profiles) exactly as boto3 and the AWS CLI do, and ``IVS_CHAT_MESSAGING_URL``
when set (``ivs-sandbox`` exports it) instead of the region's messaging endpoint.
"""

from __future__ import annotations

import os
import ssl as ssl_module
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ivs_widgets.chat import history
from ivs_widgets.chat.room import ChatToken
from ivs_widgets.colab import enable_custom_widgets
from ivs_widgets.protocol.facts import AWS_MESSAGING_ENDPOINT, CLIENT_MAX_ATTEMPTS, MESSAGING_URL_VARIABLE

if TYPE_CHECKING:  # the sandbox is imported only to start one: AWS users never load the server
    from ivs_widgets.sandbox import Sandbox

BACKEND_VARIABLE = "IVS_BACKEND"
PLAYBACK_VARIABLE = "IVS_PLAYBACK_URL"
SANDBOX, AWS = "sandbox", "aws"


class OwnsSandbox:
    """``close()``, or leaving a ``with`` block, stops the sandbox this object started in-process (if any)
    and takes back the environment variables it exported."""

    sandbox: Sandbox | None
    _exported: dict[str, str | None] | None = None
    _closed: bool = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run: a notebook's clean-up cell checks it, so running it again is harmless."""
        return self._closed

    def export_environment(self) -> None:
        """Point subprocesses of this kernel (``!aws ivschat …``, scripts) at the embedded sandbox: its
        endpoint, stand-in credentials and region, until ``close()``. Never done on AWS.

        The folder of this Python's scripts goes first on ``PATH`` too, so ``!aws`` runs the AWS CLI
        installed with the tutorial even when Jupyter was started without activating its venv."""
        if self.sandbox is None or self._exported is not None:
            return
        variables = self.sandbox.environment()
        scripts, path = sysconfig.get_path("scripts"), os.environ.get("PATH", "")
        if scripts and scripts not in path.split(os.pathsep):
            variables["PATH"] = os.pathsep.join(filter(None, [scripts, path]))
        self._exported = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)

    def close(self) -> None:
        if self._exported is not None:
            for name, value in self._exported.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._exported = None
        if self.sandbox is not None:
            self.sandbox.stop()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Backend(OwnsSandbox):
    """Where chat lives: a boto3 ``ivschat`` client and the messaging endpoint that goes with it."""

    kind: str
    region: str
    client: Any
    messaging_url: str
    sandbox: Sandbox | None = field(default=None, repr=False)
    #: Trust for a sandbox serving TLS with its own CA (a workshop); None: the system's CAs.
    ssl: ssl_module.SSLContext | None = field(default=None, repr=False)

    def token_provider(self, room_arn: str, user_id: str, capabilities: Iterable[str] = (),
                       attributes: dict[str, str] | None = None,
                       session_duration_minutes: int | None = None) -> Callable[[], ChatToken]:
        """A provider that mints a fresh token with CreateChatToken each time a connection needs one.

        In a real app this call runs on your server: the browser never holds AWS credentials.
        """
        request: dict[str, Any] = {"roomIdentifier": room_arn, "userId": user_id,
                                   "capabilities": list(capabilities)}
        if attributes:
            request["attributes"] = attributes
        if session_duration_minutes is not None:
            request["sessionDurationInMinutes"] = session_duration_minutes

        def provide() -> ChatToken:
            return ChatToken.from_response(self.client.create_chat_token(**request))

        return provide

    def chat_panel(self, room_arn: str, user_id: str, *, display_name: str | None = None,
                   capabilities: Iterable[str] = ("SEND_MESSAGE",), session_duration_minutes: int | None = None,
                   **panel_options: Any) -> Any:
        """A ChatPanel for ``user_id`` in the room, with moderator controls when the capabilities allow,
        and the input limited to the room's maximum message length."""
        from ivs_widgets.widgets.chat import ChatPanel

        capabilities = list(capabilities)
        room = self.client.get_room(identifier=room_arn)
        provider = self.token_provider(room_arn, user_id, capabilities,
                                       {"displayName": display_name} if display_name else None,
                                       session_duration_minutes)
        panel_options.setdefault("title", room.get("name") or "IVS Chat")
        if self.ssl is not None:
            panel_options.setdefault("ssl", self.ssl)
        return ChatPanel(self.messaging_url, provider, capabilities=capabilities,
                         max_length=room["maximumMessageLength"], **panel_options)

    def live_stream_panel(self, room_arn: str, user_id: str, *, playback_url: str | None = None,
                          display_name: str | None = None, capabilities: Iterable[str] = ("SEND_MESSAGE",),
                          **chat_options: Any) -> Any:
        """The player and the room's chat side by side, as on the seed's demo page."""
        from ivs_widgets.widgets.live import LiveStreamPanel

        chat = self.chat_panel(room_arn, user_id, display_name=display_name, capabilities=capabilities,
                               **chat_options)
        return LiveStreamPanel(self.playback_url(playback_url), chat=chat)

    def seed_demo(self, room_arn: str, user_id: str, *, username: str, display_name: str | None = None) -> Any:
        """The seed's chat page, running in this browser: its own WebSocket to the room, sending as
        ``username`` (what the page claims) with a token for ``user_id`` (what your backend vouches for)."""
        from ivs_widgets.widgets.seed_demo import SeedChatDemo

        provider = self.token_provider(room_arn, user_id, ["SEND_MESSAGE"],
                                       {"displayName": display_name} if display_name else None)
        return SeedChatDemo(self.messaging_url, provider, username=username, ssl=self.ssl)

    def review_handler(self, function: Callable[[dict[str, Any]], dict[str, Any]], name: str) -> str:
        """The Lambda ARN to put in a room's ``messageReviewHandler.uri`` for ``function``.

        The sandbox stands the Python function in for a Lambda of that name. On AWS the handler is a
        real Lambda function that you deploy (same logic, ``def handler(event, context)``), so this
        refuses rather than pretend.
        """
        if self.sandbox is None:
            raise RuntimeError(f"On AWS a review handler is a Lambda function: deploy {name!r} (Python runtime, "
                               "handler(event, context) returning the same result) and use its ARN as the uri")
        arn = f"arn:aws:lambda:{self.region}:{self.sandbox.config.account_id}:function:{name}"
        self.sandbox.register_lambda(arn, function)
        return arn

    def chat_history(self, room_arn: str, logging_configuration_arn: str | None = None) -> history.ChatHistory:
        """What a logging configuration of the room has recorded so far (IVS Chat has no history API).

        Without ``logging_configuration_arn``, the room's first configuration that can be read back.
        The sandbox first writes out every frame delivered so far, then reads its local folders. On
        AWS this reads the S3 bucket or the CloudWatch Logs group with boto3 in the backend's region;
        records reach them some time after delivery (S3: minutes). Firehose delivers to destinations
        of its own, so a Firehose configuration cannot be read back here on AWS.
        """
        arns = ([logging_configuration_arn] if logging_configuration_arn
                else self.client.get_room(identifier=room_arn).get("loggingConfigurationIdentifiers", []))
        for arn in arns:
            destination = self.client.get_logging_configuration(identifier=arn)["destinationConfiguration"]
            if self.sandbox is not None and self.sandbox.chat_logs is not None and self.sandbox.data_dir:
                self.sandbox.chat_logs.flush()
                return history.read_sandbox(self.sandbox.data_dir, destination, room_arn)
            import boto3

            if "s3" in destination:
                return history.read_s3(destination["s3"]["bucketName"], room_arn,
                                       client=boto3.client("s3", region_name=self.region))
            if "cloudWatchLogs" in destination:
                return history.read_cloudwatch(destination["cloudWatchLogs"]["logGroupName"], room_arn,
                                               client=boto3.client("logs", region_name=self.region))
        raise ValueError("no logging configuration of this room can be read back: attach one with an S3 or "
                         "CloudWatch Logs destination (UpdateRoom loggingConfigurationIdentifiers)")

    def playback_url(self, url: str | None = None) -> str:
        """The stream to play: ``url`` if given; else the sandbox's local test stream, or on AWS the
        ``IVS_PLAYBACK_URL`` variable (your channel's playback URL from the IVS console or GetChannel)."""
        if url:
            return url
        if self.sandbox is not None:
            return self.sandbox.start_test_stream()
        from_environment = os.environ.get(PLAYBACK_VARIABLE)
        if not from_environment:
            raise ValueError(f"on AWS, pass your channel's playback URL or set {PLAYBACK_VARIABLE}")
        return from_environment

    def __repr__(self) -> str:
        where = "local sandbox" if self.kind == SANDBOX else "Amazon IVS Chat on AWS"
        return (f"Backend({where}, region={self.region}, control={self.client.meta.endpoint_url}, "
                f"messaging={self.messaging_url})")



def connect(kind: str | None = None, *, region: str | None = None, **sandbox_settings: Any) -> Backend:
    """The backend named by ``kind``, else by ``$IVS_BACKEND``, else the local sandbox.

    The first cell of every notebook, so on Colab it also turns on the widget manager the panels need.
    """
    enable_custom_widgets()
    kind = (kind or os.environ.get(BACKEND_VARIABLE) or SANDBOX).lower()
    if kind == SANDBOX:
        if region is not None:
            sandbox_settings["region"] = region
        from ivs_widgets.sandbox import Sandbox

        sandbox = Sandbox(**sandbox_settings).start()
        backend = Backend(SANDBOX, sandbox.region, sandbox.client(), sandbox.messaging_endpoint, sandbox)
        backend.export_environment()
        return backend
    if kind == AWS:
        import boto3
        from botocore.config import Config

        # A fresh session reads the configuration now (boto3's default one keeps what it read first).
        client = boto3.session.Session().client(
            "ivschat", region_name=region,
            config=Config(retries={"mode": "standard", "max_attempts": CLIENT_MAX_ATTEMPTS}))
        resolved = client.meta.region_name
        # The standard settings move the control plane (AWS_ENDPOINT_URL_IVSCHAT) and its trust
        # (AWS_CA_BUNDLE); the messaging endpoint follows with the same trust, so a sandbox in another
        # process, configured by its printed exports, is reached exactly as AWS is.
        messaging = os.environ.get(MESSAGING_URL_VARIABLE) or AWS_MESSAGING_ENDPOINT.format(region=resolved)
        ca_bundle = os.environ.get("AWS_CA_BUNDLE")
        trust = ssl_module.create_default_context(cafile=ca_bundle) if ca_bundle else None
        return Backend(AWS, resolved, client, messaging, ssl=trust)
    raise ValueError(f"unknown backend {kind!r}: use {SANDBOX!r} (the default) or {AWS!r}")
