"""The one switch: the local sandbox (default) or Amazon IVS Chat on AWS.

A notebook's first cell is ``backend = ivs_widgets.backend.connect()``; everything after it is the
same for both. ``IVS_BACKEND=aws`` (or ``connect("aws")``) uses the standard AWS configuration
(region, credentials, profiles) exactly as boto3 and the AWS CLI do, and ``IVS_CHAT_MESSAGING_URL``
when set (``ivs-sandbox`` exports it) instead of the region's messaging endpoint.
"""

from __future__ import annotations

import functools
import os
import ssl as ssl_module
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ivs_widgets.aws.created import CreatedResources
from ivs_widgets.chat import history
from ivs_widgets.chat.room import ChatToken
from ivs_widgets.colab import enable_custom_widgets
from ivs_widgets.protocol.facts import AWS_MESSAGING_ENDPOINT, CLIENT_MAX_ATTEMPTS, MESSAGING_URL_VARIABLE
from ivs_widgets.test_card import StreamError, TestCardFeed

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
    #: On AWS, everything made through this backend (rooms, logging configurations, review-handler
    #: functions and their role, log buckets): ``close()`` deletes it, and so does the kernel's exit.
    created: CreatedResources = field(default_factory=CreatedResources, repr=False)
    _session: Any = field(default=None, repr=False)
    _account_id: str | None = field(default=None, repr=False)
    _lambdas: Any = field(default=None, repr=False)
    _channel: dict[str, Any] | None = field(default=None, repr=False)
    _ivs: Any = field(default=None, repr=False)

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

    def review_handler(self, function: Callable[[dict[str, Any]], dict[str, Any]], name: str,
                       room_arn: str | None = None) -> str:
        """The Lambda ARN to put in a room's ``messageReviewHandler.uri`` for ``function``.

        The sandbox stands the Python function in for a Lambda of that name. On AWS this deploys it as a
        Lambda function (Python runtime; the module holds the function and what it uses, see
        :mod:`ivs_widgets.aws.handler_source`), with an execution role (``IVS_LAMBDA_ROLE_ARN``, or one
        it creates) and a permission for IVS Chat to invoke it for ``room_arn`` (or for every room of
        the account). ``close()`` deletes what it created. Calling it again with the same name updates
        the function's code.
        """
        if self.sandbox is None:
            from ivs_widgets.aws.review_lambda import ReviewLambdas

            if self._lambdas is None:
                self._lambdas = ReviewLambdas(self._session, self.region, self.created)
            arn: str = self._lambdas.deploy(function, name, room_arn)
            return arn
        arn = f"arn:aws:lambda:{self.region}:{self.sandbox.config.account_id}:function:{name}"
        self.sandbox.register_lambda(arn, function)
        return arn

    @property
    def account_id(self) -> str:
        """The AWS account of this backend's resources (the sandbox's stand-in, or STS GetCallerIdentity)."""
        if self._account_id is None:
            if self.sandbox is not None:
                self._account_id = self.sandbox.config.account_id
            else:
                self._account_id = self._session.client("sts", region_name=self.region).get_caller_identity()["Account"]
        return self._account_id

    def log_bucket(self, name: str) -> str:
        """An S3 bucket for a logging configuration. The sandbox needs none: ``name`` is used as it is. On
        AWS bucket names are global, so this is ``IVS_LOG_BUCKET`` when set, else a new bucket
        ``<name>-<random>`` that log delivery may write to, emptied and deleted by ``close()``."""
        if self.sandbox is not None:
            return name
        from ivs_widgets.aws.log_bucket import log_bucket

        return log_bucket(self._session.client("s3", region_name=self.region), self.account_id, self.region, name,
                          self.created)

    def chat_history(self, room_arn: str, logging_configuration_arn: str | None = None, *, expect: int = 0,
                     timeout: float | None = None) -> history.ChatHistory:
        """What a logging configuration of the room has recorded so far (IVS Chat has no history API).

        Without ``logging_configuration_arn``, the room's first configuration that can be read back.
        The sandbox first writes out every frame delivered so far, then reads its local folders. On
        AWS this reads the S3 bucket or the CloudWatch Logs group with boto3 in the backend's region;
        records reach them some time after delivery (S3: about 5 minutes). With ``expect``, it waits
        until that many records are there, with a progress line, for ``timeout`` seconds at most (by
        default three times the destination's documented delay). Firehose delivers to destinations of
        its own, so a Firehose configuration cannot be read back here on AWS.
        """
        from ivs_widgets.aws.delivery_wait import default_timeout, wait_for_records

        arns = ([logging_configuration_arn] if logging_configuration_arn
                else self.client.get_room(identifier=room_arn).get("loggingConfigurationIdentifiers", []))
        for arn in arns:
            destination = self.client.get_logging_configuration(identifier=arn)["destinationConfiguration"]
            read = self._history_reader(destination, room_arn)
            if read is not None:
                kind = next(iter(destination))
                where = destination[kind].get("bucketName") or destination[kind].get("logGroupName") or kind
                return wait_for_records(read, expect, default_timeout(kind) if timeout is None else timeout, where)
        raise ValueError("no logging configuration of this room can be read back: attach one with an S3 or "
                         "CloudWatch Logs destination (UpdateRoom loggingConfigurationIdentifiers)")

    def _history_reader(self, destination: dict[str, Any], room_arn: str) -> Callable[[], history.ChatHistory] | None:
        """A function that reads the room's records from ``destination`` now, or None if it cannot be read.

        The sandbox writes out what it delivered first; it keeps S3 and CloudWatch Logs records in its
        folders, or at the S3 / CloudWatch Logs API it was given (``AWS_ENDPOINT_URL_S3`` …), read there
        with its own clients. On AWS, the backend's session reads them."""
        sandbox = self.sandbox
        if sandbox is None:
            return _api_reader(destination, room_arn, lambda service: self._session.client(service, region_name=self.region))
        chat_logs, folder = sandbox.chat_logs, sandbox.data_dir
        if chat_logs is None or folder is None:
            return None
        kind = next(iter(destination))
        api = _api_reader(destination, room_arn, lambda _: sandbox.log_apis.client(kind)) \
            if kind in sandbox.log_apis.endpoints else None

        def read() -> history.ChatHistory:
            chat_logs.flush()
            return api() if api is not None else history.read_sandbox(folder, destination, room_arn)

        return read

    def playback_url(self, url: str | None = None) -> str:
        """The stream to play: ``url`` if given; else the sandbox's local test stream, or on AWS the
        ``IVS_PLAYBACK_URL`` variable (your channel's playback URL from the IVS console or GetChannel),
        else the playback URL of a channel made for you (see :meth:`tutorial_channel`)."""
        if url:
            return url
        if self.sandbox is not None:
            return self.sandbox.start_test_stream()
        from_environment = os.environ.get(PLAYBACK_VARIABLE)
        if from_environment:
            return from_environment
        playback: str = self.tutorial_channel()["playbackUrl"]
        return playback

    def tutorial_channel(self) -> dict[str, Any]:
        """On AWS, an IVS channel of your own (type BASIC, low latency), made once and deleted by ``close()``.
        A channel costs nothing until you stream to it; until then its player shows no stream."""
        if self._channel is None:
            channel = self.ivs.create_channel(name="ivs-widgets-tutorial", type="BASIC", latencyMode="LOW")["channel"]
            print(f"No {PLAYBACK_VARIABLE}: made the IVS channel {channel['name']!r}, deleted by backend.close(). "
                  f"Stream to it (e.g. OBS) at {self.ingest_server(channel)} with its stream key "
                  "(IVS console: Channels); streaming is billed.")
            self._channel = channel
        return self._channel

    @property
    def ivs(self) -> Any:
        """A boto3 ``ivs`` client (live video: channels, stream keys, streams) beside ``client`` (chat), in the
        same place: the sandbox's, or AWS's by the standard configuration (``AWS_ENDPOINT_URL_IVS`` too). On
        AWS every channel made through it is recorded, and ``close()`` deletes it (ending its stream first)."""
        if self._ivs is None:
            if self.sandbox is not None:
                self._ivs = self.sandbox.client("ivs")
            else:
                from ivs_widgets.aws.live import record_channels

                self._ivs = self._session.client("ivs", region_name=self.region, config=_retrying())
                record_channels(self._ivs, self.created.add)
        return self._ivs

    def delete_channels_at_close(self, name: str) -> None:
        """On AWS, have ``close()`` (or the kernel's exit) delete the channels named ``name`` that another
        program made, such as ``!aws ivs create-channel``: this backend did not see them made."""
        if self.sandbox is not None:
            return  # the sandbox's channels end with it
        from ivs_widgets.aws.live import delete_channel

        for channel in self.ivs.list_channels(filterByName=name)["channels"]:
            self.created.add(f"IVS channel {channel['arn']}", functools.partial(delete_channel, self.ivs, channel["arn"]))

    @staticmethod
    def ingest_server(channel: Mapping[str, Any]) -> str:
        """Where an encoder sends the channel's video (OBS: Settings → Stream → Server), the stream key going
        after it: ``rtmps://<ingestEndpoint>:443/app/`` on AWS; a sandbox's ``ingestEndpoint`` carries its
        port, and it takes plain ``rtmp://<ingestEndpoint>/app/``."""
        from ivs_widgets.aws.live import ingest_server

        return ingest_server(channel["ingestEndpoint"])

    def go_live(self, channel: str | Mapping[str, Any], stream_key: str | None = None, *,
                timeout: float = 60) -> TestCardFeed:
        """Stream the built-in source (ffmpeg's test card with a running clock, and a tone) to ``channel`` (its
        ARN, or the channel as CreateChannel returns it) with ``stream_key`` (default: the channel's own), as
        an encoder such as OBS would. Returns once GetStream says LIVE (on the sandbox: once its playback URL
        has video); StreamError with ffmpeg's log if it is not live within ``timeout`` seconds.

        The feed's ``stop()`` (or leaving ``with feed:``, or ``close()``, or the kernel's exit) ends it.
        On AWS it runs imageio-ffmpeg's ffmpeg on this machine, pushing RTMPS to the channel's ingest, and
        costs what any stream does while it runs: IVS video input hours at the channel type's rate (BASIC,
        STANDARD, ADVANCED), and video output hours for each viewer watching (see Amazon IVS pricing).
        """
        arn = channel if isinstance(channel, str) else channel["arn"]
        if self.sandbox is None:
            from ivs_widgets.aws.live import go_live

            feed = go_live(self.ivs, arn, stream_key, timeout)
        else:
            from ivs_widgets.aws.live import stream_keys

            if stream_key is not None and stream_key not in stream_keys(self.ivs, arn):
                raise StreamError(f"that is not the stream key of channel {arn}: its ingest would refuse the stream")
            feed = self.sandbox.go_live(arn, timeout=timeout)
        assert feed.process is not None
        self.created.add(f"test card stream to {arn} (ffmpeg {feed.process.pid})", feed.stop)
        return feed

    def close(self) -> None:
        """Stop what this backend started. On AWS, first delete everything it created (newest first);
        what cannot be deleted is raised as a CleanUpError naming it, and a second ``close()`` tries again."""
        self.created.clean_up()
        super().close()

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

        # A fresh session reads the configuration now (boto3's default one keeps what it read first).
        session = boto3.session.Session()
        client = session.client("ivschat", region_name=region, config=_retrying())
        resolved = client.meta.region_name
        # The standard settings move the control plane (AWS_ENDPOINT_URL_IVSCHAT) and its trust
        # (AWS_CA_BUNDLE); the messaging endpoint follows with the same trust, so a sandbox in another
        # process, configured by its printed exports, is reached exactly as AWS is.
        messaging = os.environ.get(MESSAGING_URL_VARIABLE) or AWS_MESSAGING_ENDPOINT.format(region=resolved)
        ca_bundle = os.environ.get("AWS_CA_BUNDLE")
        trust = ssl_module.create_default_context(cafile=ca_bundle) if ca_bundle else None
        backend = Backend(AWS, resolved, client, messaging, ssl=trust, _session=session)
        _record_created(backend)
        return backend
    raise ValueError(f"unknown backend {kind!r}: use {SANDBOX!r} (the default) or {AWS!r}")


def _retrying() -> Any:
    """The kit's retries for its AWS clients: throttled calls are tried again (``CLIENT_MAX_ATTEMPTS``)."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": CLIENT_MAX_ATTEMPTS})


def _record_created(backend: Backend) -> None:
    """Record each room and logging configuration made through ``backend.client`` for ``close()`` to delete,
    whoever made it (a notebook cell, the simulator): a run that fails halfway leaves nothing behind."""
    client = backend.client

    def recorder(kind: str, delete: Callable[..., Any]) -> Callable[..., None]:
        def record(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
            if http_response.status_code < 300 and "arn" in parsed:
                arn = parsed["arn"]
                backend.created.add(f"{kind} {arn}", lambda: delete(identifier=arn))
        return record

    client.meta.events.register("after-call.ivschat.CreateRoom", recorder("IVS Chat room", client.delete_room))
    client.meta.events.register("after-call.ivschat.CreateLoggingConfiguration",
                                recorder("IVS Chat logging configuration", client.delete_logging_configuration))


def require_sandbox(feature: str) -> None:
    """The first cell of a notebook about the sandbox's own features (the workshop). On the sandbox it
    does nothing. With ``IVS_BACKEND=aws`` it says why the notebook does not apply, and the kernel then
    runs every later cell as a line that prints "skipped", so Run All ends without an error. Outside
    IPython it ends the script (status 0)."""
    kind = (os.environ.get(BACKEND_VARIABLE) or SANDBOX).lower()
    if kind == SANDBOX:
        return
    print(f"This notebook is about {feature}, which only the local sandbox has: Amazon IVS has no such thing.\n"
          f"With {BACKEND_VARIABLE}={kind} there is nothing to run here, so every cell below prints that it was "
          f"skipped.\nTo run it, unset {BACKEND_VARIABLE} and restart the kernel.")
    shell = _ipython()
    if shell is None:
        raise SystemExit(0)
    if _skip_cell not in shell.input_transformers_post:
        shell.input_transformers_post.append(_skip_cell)


def _skip_cell(lines: list[str]) -> list[str]:
    """An IPython input transformer: the cell's code is replaced by a line that says it was skipped."""
    return [f"print('skipped: this notebook runs on the local sandbox only ({BACKEND_VARIABLE} is set)')\n"]


def _ipython() -> Any:
    """The running IPython shell, or None (a plain script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _api_reader(destination: dict[str, Any], room_arn: str,
                client: Callable[[str], Any]) -> Callable[[], history.ChatHistory] | None:
    """A reader of the room's records at the S3 or CloudWatch Logs API, with ``client(service)``'s client."""
    if "s3" in destination:
        s3 = client("s3")
        return lambda: history.read_s3(destination["s3"]["bucketName"], room_arn, client=s3)
    if "cloudWatchLogs" in destination:
        logs = client("logs")
        return lambda: history.read_cloudwatch(destination["cloudWatchLogs"]["logGroupName"], room_arn, client=logs)
    return None
