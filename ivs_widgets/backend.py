"""The one switch: the local sandbox (default) or Amazon IVS Chat on AWS.

A notebook's first cell is ``backend = ivs_widgets.backend.connect()``; everything after it is the
same for both. ``IVS_BACKEND=aws`` (or ``connect("aws")``) uses the standard AWS configuration
(region, credentials, profiles) exactly as boto3 and the AWS CLI do.
"""

from __future__ import annotations

import os
import ssl as ssl_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ivs_widgets.chat import history
from ivs_widgets.chat.room import ChatToken
from ivs_widgets.colab import enable_custom_widgets
from ivs_widgets.protocol.facts import AWS_MESSAGING_ENDPOINT

if TYPE_CHECKING:  # the sandbox is imported only to start one: AWS users never load the server
    from ivs_widgets.sandbox import Sandbox

BACKEND_VARIABLE = "IVS_BACKEND"
PLAYBACK_VARIABLE = "IVS_PLAYBACK_URL"
SANDBOX, AWS = "sandbox", "aws"


class OwnsSandbox:
    """``close()``, or leaving a ``with`` block, stops the sandbox this object started in-process (if any)."""

    sandbox: Sandbox | None

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()

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
                else self.client.get_room(identifier=room_arn)["loggingConfigurationIdentifiers"])
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
        return Backend(SANDBOX, sandbox.region, sandbox.client(), sandbox.messaging_endpoint, sandbox)
    if kind == AWS:
        import boto3

        client = boto3.client("ivschat", region_name=region)
        resolved = client.meta.region_name
        return Backend(AWS, resolved, client, AWS_MESSAGING_ENDPOINT.format(region=resolved))
    raise ValueError(f"unknown backend {kind!r}: use {SANDBOX!r} (the default) or {AWS!r}")
