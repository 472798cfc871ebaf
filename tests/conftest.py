"""Shared fixtures: a real sandbox on loopback ports, a real boto3 client signed for it, and moto's
server for the AWS APIs around it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import motoutil
import pytest

from ivs_widgets.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def ivschat(sandbox: Sandbox) -> Any:
    return sandbox.client()


@pytest.fixture
def ivs(sandbox: Sandbox) -> Any:
    return sandbox.client("ivs")


@pytest.fixture
def room(ivschat: Any) -> dict[str, Any]:
    return ivschat.create_room(name="test-room")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL (``http://127.0.0.1:<port>``) of moto's server, one for the whole session.

    It answers S3, CloudWatch Logs, IAM and Lambda's control plane (no Docker: functions can be
    created, read and deleted, not invoked). Point clients at it with ``endpoint_url`` or the
    standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables and any credentials
    (``motoutil.client(moto_server, "s3")``, ``motoutil.CREDENTIAL_VARIABLES``). State is shared by
    the session: name resources with ``motoutil.unique``.
    """
    with motoutil.running() as endpoint:
        yield endpoint
