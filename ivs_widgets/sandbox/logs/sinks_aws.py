"""The S3 and CloudWatch Logs destinations delivered through boto3 to AWS-shaped APIs.

When ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`` (``SandboxConfig.s3_endpoint``,
``logs_endpoint``) name an API (moto's server, MinIO, LocalStack), records go there in the same
bytes and names as the local folders, with boto3's standard credential chain. boto3 is imported on
first use only: a sandbox without these endpoints never loads it.

The same APIs let CreateLoggingConfiguration and UpdateLoggingConfiguration check that the bucket
or log group exists, as AWS does. The check runs on the sandbox's loop, so its clients give up fast
(a few seconds) on an endpoint that does not answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from ivs_widgets.protocol import chat_logs as layout
from ivs_widgets.sandbox.core import errors
from ivs_widgets.sandbox.logs.batches import Record, epoch_millis, s3_object

#: PutLogEvents limits: events per call, and bytes per call (each event counts its UTF-8 message plus 26).
MAX_EVENTS_PER_PUT = 10_000
MAX_BYTES_PER_PUT = 1_048_576
EVENT_OVERHEAD_BYTES = 26
#: How long a destination API may take before a call fails (the check runs on the sandbox's loop).
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0

_SERVICES = {"s3": "s3", "cloudWatchLogs": "logs"}


class DestinationApis:
    """The AWS-shaped APIs of the destinations that have an endpoint; boto3 clients made on first use."""

    def __init__(self, region: str, s3_endpoint: str | None = None, logs_endpoint: str | None = None) -> None:
        self.region = region
        #: ``destinationConfiguration`` member → endpoint URL, for the kinds delivered through an API.
        self.endpoints = {kind: url for kind, url in (("s3", s3_endpoint), ("cloudWatchLogs", logs_endpoint)) if url}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, kind: str) -> Any:
        """The boto3 client for ``kind``'s endpoint (thread-safe: the writer thread and the loop share it)."""
        with self._lock:
            if kind not in self._clients:
                import boto3  # only a sandbox that delivers to an API pays for boto3
                from botocore.config import Config

                config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                                retries={"mode": "standard", "max_attempts": 2},
                                s3={"addressing_style": "path"})  # MinIO, moto and LocalStack all take paths
                self._clients[kind] = boto3.session.Session().client(
                    _SERVICES[kind], endpoint_url=self.endpoints[kind], region_name=self.region, config=config)
            return self._clients[kind]

    def warm_up(self) -> None:
        """Make the clients now (imports boto3), off the loop, so the first check does not pay for it."""
        for kind in self.endpoints:
            self.client(kind)

    def check(self, destination: dict[str, Any]) -> None:
        """Refuse a logging configuration whose bucket or log group does not exist at its API
        (ResourceNotFoundException) or cannot be reached (AccessDeniedException). Destinations
        without an API (local folders, Firehose) need no check."""
        if "s3" in destination and "s3" in self.endpoints:
            self._check_bucket(destination["s3"]["bucketName"])
        if "cloudWatchLogs" in destination and "cloudWatchLogs" in self.endpoints:
            self._check_log_group(destination["cloudWatchLogs"]["logGroupName"])

    def _check_bucket(self, bucket: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client("s3").head_bucket(Bucket=bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise errors.not_found(bucket, "S3 bucket") from None
            raise _unreachable("S3 bucket", bucket, self.endpoints["s3"], error) from None
        except BotoCoreError as error:
            raise _unreachable("S3 bucket", bucket, self.endpoints["s3"], error) from None

    def _check_log_group(self, log_group: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client("cloudWatchLogs").get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix=log_group)
            if any(group["logGroupName"] == log_group for page in pages for group in page.get("logGroups", [])):
                return
        except (BotoCoreError, ClientError) as error:
            raise _unreachable("CloudWatch Logs group", log_group, self.endpoints["cloudWatchLogs"], error) from None
        raise errors.not_found(log_group, "CloudWatch Logs log group")


def _unreachable(what: str, name: str, endpoint: str, error: Exception) -> errors.ApiError:
    return errors.access_denied("AccessDeniedException", f"Cannot check the {what} {name!r} at {endpoint}: {error}")


@dataclass(frozen=True)
class S3Bucket:
    """A room's objects in a bucket of the S3 API: one gzip object per batch."""

    kind: ClassVar[str] = "s3"
    apis: DestinationApis
    bucket: str
    room_arn: str

    def write(self, records: list[Record]) -> None:
        key, data = s3_object(self.room_arn, records)
        self.apis.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data)

    def __str__(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.apis.endpoints['s3']}"


@dataclass(frozen=True)
class CloudWatchLogGroup:
    """A room's log stream in a log group of the CloudWatch Logs API: an event per record, the stream
    created on first use as the service does."""

    kind: ClassVar[str] = "cloudWatchLogs"
    apis: DestinationApis
    log_group: str
    room_arn: str

    def write(self, records: list[Record]) -> None:
        client = self.apis.client("cloudWatchLogs")
        stream = layout.log_stream(self.room_arn)
        # A batch's events must be in time order; sorting is stable, so equal times keep send order.
        events = [{"timestamp": epoch_millis(r), "message": r.line} for r in sorted(records, key=epoch_millis)]
        for batch in _put_batches(events):
            try:
                client.put_log_events(logGroupName=self.log_group, logStreamName=stream, logEvents=batch)
            except client.exceptions.ResourceNotFoundException:
                try:
                    client.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
                except client.exceptions.ResourceAlreadyExistsException:
                    pass
                client.put_log_events(logGroupName=self.log_group, logStreamName=stream, logEvents=batch)

    def __str__(self) -> str:
        return f"CloudWatch Logs group {self.log_group!r} at {self.apis.endpoints['cloudWatchLogs']}"


def _put_batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Events split into PutLogEvents calls that stay within its count and size limits."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + EVENT_OVERHEAD_BYTES
        if batches[-1] and (len(batches[-1]) >= MAX_EVENTS_PER_PUT or size + cost > MAX_BYTES_PER_PUT):
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += cost
    return batches
