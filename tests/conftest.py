"""Shared fixtures: a real sandbox on loopback ports and a real boto3 client signed for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
