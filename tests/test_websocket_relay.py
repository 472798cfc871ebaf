"""The kernel's half of the seed demo's WebSocket relay, against a real sandbox on loopback.

The relay opens only the demo's own endpoint, relays text frames both ways and tells the page every
event a browser's WebSocket would fire (with the reason, which a browser keeps to itself); it never
raises on what a page sends, and closing it closes its sockets and ends its thread. The page's
half is exercised in Chromium by tests/browser/test_remote_browser.py.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from typing import Any

import pytest
from wsutil import mint

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.widgets.websocket_relay import ABNORMAL, GOING_AWAY, MAX_FRAME_BYTES, NORMAL, TOO_BIG, WebSocketRelay

TIMEOUT = 10


class Page:
    """What a page's relayed WebSockets see: every message the relay sends, in a queue."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.relay = WebSocketRelay(lambda: self.endpoint, self.events.put)

    def open(self, token: str, socket_id: str = "s1", url: str | None = None) -> None:
        self.relay.handle({"type": "ws-open", "id": socket_id, "url": url or self.endpoint, "protocols": [token]})

    def send(self, data: Any, socket_id: str = "s1") -> None:
        self.relay.handle({"type": "ws-send", "id": socket_id, "data": data})

    def close(self, code: int = NORMAL, reason: str = "", socket_id: str = "s1") -> None:
        self.relay.handle({"type": "ws-close", "id": socket_id, "code": code, "reason": reason})

    def next(self, kind: str | None = None) -> dict[str, Any]:
        event = self.events.get(timeout=TIMEOUT)
        assert kind is None or event["type"] == kind, event
        return event

    def next_chat_message(self) -> dict[str, Any]:
        """The next MESSAGE frame, past the sandbox's other frames."""
        while True:
            frame = json.loads(self.next("ws-message")["data"])
            if frame["Type"] == "MESSAGE":
                return frame


@pytest.fixture
def page(sandbox: Sandbox) -> Any:
    page = Page(sandbox.messaging_endpoint)
    yield page
    page.relay.close()


def relay_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ivs-seed-relay"]


def test_a_page_chats_both_ways_and_closes(page: Page, sandbox: Sandbox, room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"], "page", attributes={"displayName": "Page"})
    page.open(token)
    assert page.next("ws-open") == {"type": "ws-open", "id": "s1", "protocol": token}
    page.send(json.dumps({"action": "SEND_MESSAGE", "content": "from the page", "attributes": {"username": "Ada"}}))
    mine = page.next_chat_message()
    assert (mine["Content"], mine["Attributes"], mine["Sender"]["UserId"]) == ("from the page", {"username": "Ada"},
                                                                                "page")

    other = Page(sandbox.messaging_endpoint)
    other.open(mint(sandbox, room["arn"], "kernel"), "k1")
    other.next("ws-open")
    other.send(json.dumps({"Action": "SEND_MESSAGE", "Content": "from the kernel"}), "k1")
    assert page.next_chat_message()["Content"] == "from the kernel"
    other.relay.close()

    page.close(4000, "bye")
    assert page.next("ws-close") == {"type": "ws-close", "id": "s1", "code": 4000, "reason": "bye", "wasClean": True}
    assert page.relay.open_count == 0


def test_a_closed_sandbox_is_an_error_then_an_abnormal_close(sandbox: Sandbox, room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"])
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        page = Page(f"ws://127.0.0.1:{unused.getsockname()[1]}")  # bound, not listening: refused
        page.open(token)
        assert page.next("ws-error")["message"].startswith(f"the kernel could not connect to {page.endpoint}")
        assert page.next("ws-close") == {"type": "ws-close", "id": "s1", "code": ABNORMAL, "reason": "",
                                         "wasClean": False}
    page.relay.close()


def test_the_servers_refusal_reaches_the_page_with_its_reason(page: Page, sandbox: Sandbox,
                                                              room: dict[str, Any]) -> None:
    token = mint(sandbox, room["arn"])
    page.open(token, "first")
    page.next("ws-open")
    page.open(token, "again")  # a token opens one connection, once
    assert page.next("ws-error")["message"] == ("the server refused the connection: HTTP 401 "
                                                "chat token has already been used")
    assert page.next("ws-close")["code"] == ABNORMAL


@pytest.mark.parametrize("asked", [
    "ws://127.0.0.1:{other}",  # another port of the same machine
    "ws://localhost:{port}",  # the same server under another name
    "ws://127.0.0.1:{port}/other",
    "http://127.0.0.1:{port}",
    "wss://edge.ivschat.us-east-1.amazonaws.com",
    None,
])
def test_only_the_demos_own_endpoint_is_relayed(page: Page, sandbox: Sandbox, room: dict[str, Any],
                                               asked: str | None) -> None:
    port = int(sandbox.messaging_endpoint.rsplit(":", 1)[1])
    url = asked.format(port=port, other=port + 1) if asked else None
    page.relay.handle({"type": "ws-open", "id": "s1", "url": url, "protocols": [mint(sandbox, room["arn"])]})
    assert "relays only the demo's own endpoint" in page.next("ws-error")["message"]
    assert page.next("ws-close")["code"] == ABNORMAL
    assert relay_threads() == []  # nothing was opened, not even the relay's loop


def test_what_a_page_should_not_send_is_answered_not_raised(page: Page, sandbox: Sandbox,
                                                            room: dict[str, Any]) -> None:
    page.send("before any open")
    assert page.next("ws-error")["message"] == "this WebSocket is closed"
    page.relay.handle({"type": "ws-open", "id": "s1", "url": page.endpoint, "protocols": "not a list"})
    assert page.next("ws-error")["message"] == "subprotocols must be a list of non-empty strings"
    page.next("ws-close")
    page.relay.handle({"type": "ws-open", "url": page.endpoint})  # no id: nothing to answer
    page.relay.handle({"type": "ws-teleport", "id": "s1"})
    assert page.next("ws-error")["message"] == "the relay does not know 'ws-teleport'"

    page.open(mint(sandbox, room["arn"]))
    page.next("ws-open")
    page.send(b"\x00binary")
    assert page.next("ws-error")["message"] == "the relay carries text frames only"
    page.send("x" * (MAX_FRAME_BYTES + 1))
    assert "larger than the relay's 1 MiB" in page.next("ws-error")["message"]
    assert page.next("ws-close") == {"type": "ws-close", "id": "s1", "code": TOO_BIG, "reason": "message too big",
                                     "wasClean": True}
    page.send("after the close")
    assert page.next("ws-error")["message"] == "this WebSocket is closed"


def test_a_sandbox_that_stops_closes_the_pages_socket(room: dict[str, Any], sandbox: Sandbox) -> None:
    page = Page(sandbox.messaging_endpoint)
    page.open(mint(sandbox, room["arn"]))
    page.next("ws-open")
    sandbox.stop()
    close = page.next("ws-close")
    assert (close["code"], close["wasClean"]) == (GOING_AWAY, True)
    page.relay.close()


def test_closing_the_relay_closes_its_sockets_and_ends_its_thread(page: Page, sandbox: Sandbox,
                                                                  room: dict[str, Any]) -> None:
    page.open(mint(sandbox, room["arn"]), "a")
    page.open(mint(sandbox, room["arn"]), "b")
    assert {page.next("ws-open")["id"], page.next("ws-open")["id"]} == {"a", "b"}
    assert len(relay_threads()) == 1

    page.relay.close()
    closes = [page.next("ws-close"), page.next("ws-close")]
    assert {(c["id"], c["code"], c["reason"]) for c in closes} == {
        ("a", GOING_AWAY, "the notebook closed the demo"), ("b", GOING_AWAY, "the notebook closed the demo")}
    assert relay_threads() == [] and page.relay.open_count == 0
    page.open(mint(sandbox, room["arn"]), "c")
    assert page.next("ws-error")["message"] == "the demo has ended: the kernel relays no more connections"
    page.relay.close()  # twice is fine
