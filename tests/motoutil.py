"""moto's server standing in for the AWS APIs around the sandbox: S3, CloudWatch Logs, IAM, Lambda.

One ``ThreadedMotoServer`` per test session (the ``moto_server`` fixture in conftest.py yields its
endpoint URL). Its state is shared by every test of the session, so each test names its buckets,
log groups, functions and roles uniquely (:func:`unique`) instead of relying on a reset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: moto accepts any credentials; these are what the tests sign with (boto3 needs some).
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: The same credentials as the standard variables, for a process (``ivs-sandbox``, a notebook kernel).
CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


@contextmanager
def running() -> Iterator[str]:
    """Start moto's server on a free loopback port; yields its endpoint URL (``http://127.0.0.1:<port>``)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(endpoint: str, service: str, region: str = REGION) -> Any:
    """A boto3 client of ``service`` on moto's server, signed with the test credentials."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=region, **CREDENTIALS)


def unique(prefix: str) -> str:
    """A name no other test of the session uses (lower case: valid for S3 buckets too)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextmanager
def delivering_sandbox(endpoint: str, monkeypatch: Any, **settings: Any) -> Iterator[Any]:
    """A sandbox whose S3 and CloudWatch Logs destinations are moto's APIs at ``endpoint``; its
    boto3 finds the test credentials in the environment (``monkeypatch`` puts them there for the test)."""
    from ivs_widgets.sandbox import Sandbox

    for name, value in CREDENTIAL_VARIABLES.items():
        monkeypatch.setenv(name, value)
    with Sandbox(s3_endpoint=endpoint, logs_endpoint=endpoint, **settings) as sandbox:
        yield sandbox
