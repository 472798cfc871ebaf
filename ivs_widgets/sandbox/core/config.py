"""Settings of one sandbox: where it listens, who it pretends to be, and its quotas."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ivs_widgets.protocol import facts as c


def host_for_url(host: str) -> str:
    """How a URL names a host the sandbox listens on: every interface is reachable as 127.0.0.1 here."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    #: Control-plane (HTTP) port; 0 picks a free one. The messaging port defaults to a free one.
    port: int = 0
    messaging_port: int = 0
    #: RTMP ingest port (encoders publish to ``rtmp://host:port/app/<stream key>``); 0 picks a free one,
    #: None takes RTMP's own, 1935, or a free one while another program holds it (``ivs-sandbox``'s default).
    ingest_port: int | None = 0
    region: str = c.SANDBOX_REGION
    account_id: str = c.SANDBOX_ACCOUNT_ID
    access_key_id: str = c.SANDBOX_ACCESS_KEY_ID
    #: Left out of the repr like any secret key (a user may put a real one here).
    secret_access_key: str = field(default=c.SANDBOX_SECRET_ACCESS_KEY, repr=False)
    #: Refuse requests that are not SigV4-signed with the credentials above, as AWS does.
    require_signature: bool = True
    #: sqlite file keeping rooms, logging configurations, channels, stream keys, stream sessions and
    #: tags across restarts (None: memory).
    state_path: Path | None = None
    #: Folder of the chat logs' local S3, CloudWatch Logs and Firehose destinations
    #: (None: a temporary folder, removed when the sandbox stops).
    data_dir: Path | None = None
    #: S3 and CloudWatch Logs APIs (moto's server, MinIO, LocalStack) that chat logs go to, through boto3
    #: with its standard credentials, instead of local folders; None: the folders. Taken from the
    #: standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`` variables unless given.
    s3_endpoint: str | None = field(default_factory=lambda: os.environ.get("AWS_ENDPOINT_URL_S3") or None)
    logs_endpoint: str | None = field(
        default_factory=lambda: os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") or None)
    #: Chat logs arrive after AWS's documented delays (S3 5 min, CloudWatch Logs and Firehose 10 s)
    #: times this (``ivs-sandbox --realistic-log-delivery [SCALE]``); None: about a second.
    log_delivery_scale: float | None = None
    #: Workshop mode: TLS (our own CA unless ``certfile``/``keyfile`` are given) and presenter
    #: credentials of its own instead of the public ones above (see ``ivs_widgets.sandbox.workshop``).
    workshop: bool = False
    #: A certificate chain and key to serve TLS with (PEM files); without them workshop mode makes its own.
    certfile: Path | None = None
    keyfile: Path | None = None
    token_lifetime_seconds: float = c.DEFAULT_TOKEN_LIFETIME_SECONDS
    quota_rooms: int = c.QUOTA_ROOMS
    quota_logging_configurations: int = c.QUOTA_LOGGING_CONFIGURATIONS
    #: Concurrent chat connections across all rooms (``ivs-sandbox --max-connections``).
    max_connections: int = c.QUOTA_CONCURRENT_CONNECTIONS
    #: Requests per second allowed per control-plane operation (an operation left out is not limited).
    quota_tps: dict[str, int] = field(default_factory=lambda: dict(c.QUOTA_TPS))
    #: False turns every rate quota off (``ivs-sandbox --no-rate-quotas``): for load generators only.
    rate_quotas: bool = True
    quota_channels: int = c.QUOTA_CHANNELS
    #: PutMetadata requests per second allowed per channel, and per account.
    quota_tps_put_metadata_per_channel: int = c.QUOTA_TPS_PUT_METADATA_PER_CHANNEL
    quota_tps_put_metadata: int = c.QUOTA_TPS_PUT_METADATA
