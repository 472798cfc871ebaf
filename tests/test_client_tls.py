"""The chat client over TLS (wss://), as against AWS: certificates are verified by default.

The sandbox serves both endpoints with a certificate from a throwaway CA made by ``trustme``; the
client trusts that CA only through the SSLContext it is given.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from ivs_widgets.chat import ChatConnectionError, ChatRoom, DisconnectReason
from ivs_widgets.sandbox import Sandbox

TIMEOUT = 10.0


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_sandbox(ca: trustme.CA) -> Iterator[Sandbox]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    with Sandbox(ssl_context=server_context) as running:
        yield running


@pytest.fixture
def provider(tls_sandbox: Sandbox, ca: trustme.CA) -> Iterator[Any]:
    with ca.cert_pem.tempfile() as ca_file:
        ivschat = tls_sandbox.client(verify=ca_file)
        arn = ivschat.create_room()["arn"]
        yield lambda: ivschat.create_chat_token(roomIdentifier=arn, userId="alice", capabilities=["SEND_MESSAGE"])


async def test_chat_over_wss_with_a_trusted_ca(tls_sandbox: Sandbox, ca: trustme.CA, provider: Any) -> None:
    assert tls_sandbox.messaging_endpoint.startswith("wss://")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with ChatRoom(tls_sandbox.messaging_endpoint, provider, ssl=client_context) as room:
        assert (await room.send_message("secure")).content == "secure"


async def test_certificates_are_verified_by_default(tls_sandbox: Sandbox, provider: Any) -> None:
    room = ChatRoom(tls_sandbox.messaging_endpoint, provider, max_reconnect_attempts=0)
    with pytest.raises(ChatConnectionError) as failure:
        await room.connect()
    assert failure.value.reason is DisconnectReason.SOCKET_ERROR
    assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)


def test_an_ssl_context_needs_a_wss_url() -> None:
    with pytest.raises(ValueError, match="wss://"):
        ChatRoom("ws://127.0.0.1:1", lambda: "token", ssl=ssl.create_default_context())
