"""The sandbox wired together: each service built, given what it needs, and served on one loop.

Services (``ivschat``, ``ivs``, ``messaging``, ``logs``, ``workshop``, ``stream``) know nothing of this module;
they reach each other through small interfaces passed in here. ``Sandbox`` runs the loop on a
:class:`~ivs_widgets.loop_thread.LoopThread` so a notebook kernel or a test keeps its own loop free;
``ivs-sandbox`` runs the same ``serve`` coroutine in the foreground.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import shutil
import socket
import ssl
import string
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import tornado.httpserver
import tornado.netutil

from ivs_widgets.loop_thread import LoopThread
from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import formats
from ivs_widgets.sandbox.core import descriptors, tls
from ivs_widgets.sandbox.core.config import SandboxConfig, host_for_url
from ivs_widgets.sandbox.core.operations import application
from ivs_widgets.sandbox.core.quotas import RateQuotas
from ivs_widgets.sandbox.core.state import CHANNEL, State
from ivs_widgets.sandbox.ivs import playback
from ivs_widgets.sandbox.ivs import responses as ivs_routes
from ivs_widgets.sandbox.ivs.ingest import RtmpIngest
from ivs_widgets.sandbox.ivs.models import PLAYBACK_PATH, VideoControlPlane
from ivs_widgets.sandbox.ivs.rtmp import RTMP_PORT
from ivs_widgets.sandbox.ivs.streams import LiveStreams
from ivs_widgets.sandbox.ivschat import responses as ivschat_routes
from ivs_widgets.sandbox.ivschat.models import ControlPlane
from ivs_widgets.sandbox.logs.models import ChatLogs, delivery_delays
from ivs_widgets.sandbox.logs.sinks_aws import DestinationApis
from ivs_widgets.sandbox.messaging.endpoint import MessagingEndpoint
from ivs_widgets.sandbox.messaging.models import MessagingService
from ivs_widgets.sandbox.messaging.review import ReviewHandler
from ivs_widgets.sandbox.stream.models import HlsTestStream, StreamError
from ivs_widgets.sandbox.workshop import routes as workshop_routes
from ivs_widgets.sandbox.workshop.models import Workshop
from ivs_widgets.test_card import TestCardFeed

log = logging.getLogger("ivs_widgets.sandbox")
T = TypeVar("T")


class Sandbox:
    """A local Amazon IVS Chat and IVS control plane: ``with Sandbox() as sb: sb.client().create_room()``,
    ``sb.client("ivs").create_channel()``."""

    def __init__(self, config: SandboxConfig | None = None, *, ssl_context: ssl.SSLContext | None = None,
                 **settings: Any) -> None:
        self.config = replace(config or SandboxConfig(), **settings)
        self.state = State(self.config.state_path)
        #: The TLS certificate and the CA attendees trust (workshop mode, or certfile/keyfile given).
        self.certificate: tls.Certificate | None = None
        if self.config.certfile or self.config.keyfile:
            if not (self.config.certfile and self.config.keyfile):
                raise ValueError("give both certfile and keyfile")
            self.certificate = tls.from_files(self.config.certfile, self.config.keyfile)
        elif self.config.workshop:
            ca = self.state.remember("workshop_ca", tls.new_ca_pem)
            self.certificate = tls.issue(ca, tls.machine_hosts(self.config.host))
        if self.config.workshop:
            key_id, secret = self._presenter_credentials()
            self.config = replace(self.config, access_key_id=key_id, secret_access_key=secret)
        self.ssl_context = ssl_context or (self.certificate.server_context() if self.certificate else None)
        quotas = RateQuotas(self.config)  # one set of windows: DeleteMessage counts API and WebSocket calls
        self.messaging = MessagingService(self.state, self.config, quotas)
        #: The S3 / CloudWatch Logs APIs chat logs go to (``config.s3_endpoint``, ``logs_endpoint``), if any.
        self.log_apis = DestinationApis(self.config.region, self.config.s3_endpoint, self.config.logs_endpoint)
        self._log_delays = delivery_delays(self.config.log_delivery_scale)
        self.control = ControlPlane(self.state, self.config, live=self.messaging, quotas=quotas,
                                    check_destination=self.log_apis.check)
        self.workshop = Workshop(self.control, live=self.messaging, activity=self.messaging.activity)
        #: Live streams of channels: what the ingest reports to (``stream_started`` / ``stream_ended``) and
        #: listens to (``stop_listeners``, ``metadata_listeners``).
        self.streams = LiveStreams(self.state)
        #: The ``ivs`` control plane (channels, stream keys, streams), its endpoints given by this sandbox.
        self.video = VideoControlPlane(self.state, self.config, self.streams, endpoints=self)
        #: The RTMP ingest (encoders publish here) and each live channel's HLS packager.
        self.ingest = RtmpIngest(self.streams)
        self.streams.stop_listeners.append(self.ingest.drop)
        self.streams.metadata_listeners.append(self.ingest.put_metadata)
        self.port = 0
        self.messaging_port = 0
        self.ingest_port = 0
        self._feeds: list[TestCardFeed] = []
        self._thread = LoopThread("ivs-sandbox")
        #: The soft file-descriptor limit, raised to the hard limit where the platform allows.
        self.descriptor_limit = descriptors.raise_limit()
        #: Chat connections this process can hold (the limit minus a reserve); see also config.max_connections.
        self.connection_capacity = descriptors.connection_capacity(self.descriptor_limit)
        self._serving: concurrent.futures.Future[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self._stream: HlsTestStream | None = None
        #: Where chat logs are written once started (``config.data_dir`` or a temporary folder).
        self.data_dir: Path | None = None
        #: The chat log writer once started; ``chat_logs.flush()`` writes everything delivered so far.
        self.chat_logs: ChatLogs | None = None
        #: The CA to trust for this sandbox's TLS as a file (``verify=`` in boto3, ``AWS_CA_BUNDLE``), once started.
        self.ca_file: Path | None = None

    # -- endpoints ---------------------------------------------------------------------------
    @property
    def control_endpoint(self) -> str:
        return self.control_endpoint_for(self.config.host)

    @property
    def messaging_endpoint(self) -> str:
        return self.messaging_endpoint_for(self.config.host)

    def control_endpoint_for(self, host: str) -> str:
        """The control plane's URL under another name of this machine (its address on the network)."""
        return f"{'https' if self.ssl_context else 'http'}://{host_for_url(host)}:{self.port}"

    def messaging_endpoint_for(self, host: str) -> str:
        """The messaging endpoint under the name a client used to reach the control plane."""
        return f"{'wss' if self.ssl_context else 'ws'}://{host_for_url(host)}:{self.messaging_port}"

    @property
    def region(self) -> str:
        return self.config.region

    def ingest_endpoint(self) -> str:
        """Where encoders send a channel's video (``ingestEndpoint``): this sandbox's host and RTMP port, so
        ``rtmp://{ingestEndpoint}/app/`` is the encoder's server (AWS gives a host, the port being 443)."""
        return f"{self.ingest_host()}:{self.ingest_port}"

    def ingest_host(self) -> str:
        return host_for_url(self.config.host)

    @property
    def rtmp_url(self) -> str:
        """The encoder's server (OBS: Settings → Stream → Server); the stream key goes after it."""
        return self.rtmp_url_for(self.config.host)

    def rtmp_url_for(self, host: str) -> str:
        """The RTMP server under another name of this machine (its address on the network)."""
        return f"rtmp://{host_for_url(host)}:{self.ingest_port}/app/"

    def playback_url(self, channel_id: str) -> str:
        """A channel's playback URL (``playbackUrl``): its live playlist on this sandbox's HTTP port."""
        return self.control_endpoint + PLAYBACK_PATH.format(channel_id=channel_id)

    def environment(self) -> dict[str, str]:
        """The variables that point plain boto3, the AWS CLI and ``connect("aws")`` in another shell at
        this sandbox: the same code path as AWS, only the endpoints and credentials differ."""
        variables = {
            "AWS_ENDPOINT_URL_IVSCHAT": self.control_endpoint,
            "AWS_ENDPOINT_URL_IVS": self.control_endpoint,
            "AWS_ACCESS_KEY_ID": self.config.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.config.secret_access_key,
            "AWS_DEFAULT_REGION": self.config.region,
            c.MESSAGING_URL_VARIABLE: self.messaging_endpoint,
        }
        if self.ca_file is not None:
            variables["AWS_CA_BUNDLE"] = str(self.ca_file)
        return variables

    def _presenter_credentials(self) -> tuple[str, str]:
        """Workshop credentials: random, kept with the state, known only to whoever started the sandbox."""
        key_id = self.state.remember("presenter_access_key_id", lambda: ("AKIA" + "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))).encode())
        secret = self.state.remember("presenter_secret_access_key", lambda: secrets.token_urlsafe(30).encode())
        return key_id.decode(), secret.decode()

    def client(self, service: str = "ivschat", **kwargs: Any) -> Any:
        """A boto3 client of ``service`` (``ivschat`` or ``ivs``) already pointed at and signed for this sandbox,
        retrying throttled calls as the kit's clients do (``CLIENT_MAX_ATTEMPTS``) unless ``config=`` says otherwise."""
        import boto3  # imported here: the sandbox itself starts without boto3
        from botocore.config import Config

        kwargs.setdefault("config", Config(retries={"mode": "standard", "max_attempts": c.CLIENT_MAX_ATTEMPTS}))
        if self.ca_file is not None:
            kwargs.setdefault("verify", str(self.ca_file))
        return boto3.client(
            service, endpoint_url=self.control_endpoint, region_name=self.config.region,
            aws_access_key_id=self.config.access_key_id, aws_secret_access_key=self.config.secret_access_key,
            **kwargs)

    def start_test_stream(self) -> str:
        """Start the local live HLS test stream (once) for the player panel; ``stop()`` ends it.

        It listens where the sandbox does, so a workshop's attendees can watch it too."""
        if self._stream is None:
            self._stream = HlsTestStream(host=self.config.host)
        return self._stream.start()

    def test_stream_url_for(self, host: str) -> str:
        """The running test stream's playback URL under another name of this machine."""
        assert self._stream is not None, "the test stream is not running"
        return self._stream.playback_url_for(host)

    def go_live(self, channel_arn: str | None = None, *, timeout: float = 60) -> TestCardFeed:
        """Publish the built-in clock-and-tone source to a channel (a new ``test-card`` channel when none is
        given) with its stream key, as an encoder would; returns once its playbackUrl lists a segment.
        ``feed.stop()`` (or the sandbox's ``stop()``) ends the stream."""
        async def start() -> TestCardFeed:
            return self.start_feed(channel_arn)

        feed = self.run(start())
        try:
            self.run(self.ingest.wait_for_segments(feed.channel_arn, timeout=timeout), timeout=timeout + 5)
        except TimeoutError:
            feed.stop()
            raise StreamError(f"channel {feed.channel_arn} did not go live within {timeout} s:\n"
                              f"{feed.log_tail()}") from None
        return feed

    def start_feed(self, channel_arn: str | None = None) -> TestCardFeed:
        """``go_live`` without the wait, on the sandbox's loop (the encoder dies with that thread)."""
        if channel_arn is None:
            channel_arn = self.video.CreateChannel({"name": "test-card"})["channel"]["arn"]
        keys = self.video.ListStreamKeys({"channelArn": channel_arn})["streamKeys"]
        key = (self.video.GetStreamKey({"arn": keys[0]["arn"]}) if keys
               else self.video.CreateStreamKey({"channelArn": channel_arn}))["streamKey"]["value"]
        channel = self.video.GetChannel({"arn": channel_arn})["channel"]
        feed = TestCardFeed(self.rtmp_url + key, channel_arn=channel_arn, playback_url=channel["playbackUrl"])
        self._feeds.append(feed.start())
        return feed

    def register_lambda(self, arn: str, handler: ReviewHandler) -> None:
        """Stand a Python callable in for the Lambda function ``arn`` (message review handler)."""
        self.messaging.register_lambda(arn, handler)

    # -- running -----------------------------------------------------------------------------
    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Serve both endpoints until ``stop()``; ``ready`` is called once both accept connections."""
        self._stopping = asyncio.Event()
        self._open_chat_logs()
        self._write_ca_file()
        try:
            await self._serve_endpoints(ready)
        finally:
            self._close_chat_logs()

    async def _serve_endpoints(self, ready: Callable[[], None] | None) -> None:
        assert self._stopping is not None
        workshop = workshop_routes.route(self.workshop, lambda: self.certificate.trust_pem if self.certificate else None,
                                         self.messaging_endpoint_for)
        apis = [ivschat_routes.api(self.control), ivs_routes.api(self.video)]
        video = playback.route(lambda channel_id: self.ingest.packager(
            formats.arn(self.config.region, self.config.account_id, CHANNEL, channel_id, service="ivs")))
        self._http = tornado.httpserver.HTTPServer(application(self.config, apis, workshop, video),
                                                   ssl_options=self.ssl_context,
                                                   max_body_size=64 * 1024 * 1024, xheaders=False)
        problems = descriptors.ProblemLog()
        sockets = self._listen(self.config.port, problems)
        self._http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        endpoint = MessagingEndpoint(self.messaging, self.connection_capacity)
        # One socket: the first address the host names (websockets serves one listening socket).
        self.messaging_port = await endpoint.start(self._listen(self.config.messaging_port, problems)[0],
                                                   self.ssl_context)
        ingest_sockets = self._bind_ingest()
        self.ingest_port = ingest_sockets[0].getsockname()[1]
        await self.ingest.start(ingest_sockets)
        if ready is not None:
            ready()
        try:
            await self._stopping.wait()
        finally:
            self._http.stop()
            await self.ingest.stop()
            await endpoint.stop()
            await self._http.close_all_connections()
            self.state.close()

    def _listen(self, port: int, problems: descriptors.ProblemLog) -> list[socket.socket]:
        """Listening sockets for the host that refuse with 503, rather than spin, when descriptors run out."""
        return [descriptors.SheddingSocket.wrap(bound, problems, "sandbox out of file descriptors: raise ulimit -n")
                for bound in tornado.netutil.bind_sockets(port, self.config.host)]

    def _bind_ingest(self) -> list[socket.socket]:
        """The RTMP ingest's sockets: ``config.ingest_port``, or with None RTMP's own port when it is free
        (a second sandbox takes a free one rather than fail: ``rtmp_url`` says which)."""
        if self.config.ingest_port is not None:
            return tornado.netutil.bind_sockets(self.config.ingest_port, self.config.host)
        try:
            return tornado.netutil.bind_sockets(RTMP_PORT, self.config.host)
        except OSError:
            return tornado.netutil.bind_sockets(0, self.config.host)

    def _open_chat_logs(self) -> None:
        self.data_dir = Path(self.config.data_dir or tempfile.mkdtemp(prefix="ivs-sandbox-"))
        self.chat_logs = ChatLogs(self.state, self.data_dir, apis=self.log_apis,
                                  delays=self._log_delays, loop=asyncio.get_running_loop())
        self.messaging.listeners.append(self.chat_logs)

    def _write_ca_file(self) -> None:
        """With a state file the CA sits next to it, so the exported path stays valid across restarts."""
        if self.certificate is None:
            return
        assert self.data_dir is not None
        state = self.config.state_path
        self.ca_file = Path(f"{state}.ca.pem") if state else self.data_dir / "workshop-ca.pem"
        self.ca_file.write_bytes(self.certificate.trust_pem)

    def _close_chat_logs(self) -> None:
        """Write the last records; a temporary data folder goes with the sandbox."""
        if self.chat_logs is not None:
            self.messaging.listeners.remove(self.chat_logs)
            self.chat_logs.close()
        if self.config.data_dir is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def start(self) -> Sandbox:
        """Start serving on a background thread; returns once both endpoints accept connections."""
        if self._serving is not None:
            return self
        ready = concurrent.futures.Future[None]()
        serving = self._thread.start().submit(self.serve(ready=lambda: ready.set_result(None)), detached=True)
        concurrent.futures.wait([ready, serving], return_when=concurrent.futures.FIRST_COMPLETED)
        if not ready.done():  # serve() ended before it was ready: report why to the caller
            self._thread.stop()
            serving.result()
            raise RuntimeError("the sandbox stopped while starting")
        self._serving = serving
        return self

    def stop(self) -> None:
        """Close every connection and endpoint, the test stream and channel feeds; safe to call twice."""
        for feed in self._feeds:
            feed.stop()
        self._feeds.clear()
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        serving, self._serving = self._serving, None
        if serving is None:
            return
        if self._stopping is not None:
            self._thread.call_soon(self._stopping.set)
        try:
            serving.result(timeout=10)
        finally:
            self._thread.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the sandbox's loop from another thread and wait for its result."""
        if self._serving is None:
            coro.close()
            raise RuntimeError("sandbox is not running")
        return self._thread.run(coro, timeout)

    def request_stop(self) -> None:
        """Ask a foreground ``serve()`` to finish (signal handlers call this)."""
        if self._stopping is not None:
            self._stopping.set()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        running = "running" if self._serving is not None else "stopped"
        return f"<Sandbox {running} control={self.control_endpoint} messaging={self.messaging_endpoint}>"

