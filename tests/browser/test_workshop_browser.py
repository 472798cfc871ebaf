"""The attendee's Voila page (notebooks/10-workshop-join-page.ipynb) in Chromium, joining a workshop.

This test process runs the workshop sandbox (``workshop.start()``, TLS on loopback) and serves the
page with Voila under a hub's base URL, the URL, room code and fingerprint in the environment as a
presenter would set them. The page's kernel joins with the room code like any attendee; "Ben" is
another attendee, in this process, who joined the same way.
"""

from __future__ import annotations

import contextlib
import queue
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from labdriver import BASE_URL, HUB_HOST, free_port, only_the_server, page_errors, server_process

from ivs_widgets import workshop
from ivs_widgets.chat import BackgroundChatRoom
from ivs_widgets.protocol import frames
from ivs_widgets.widgets.join_form import CODE_VARIABLE, FINGERPRINT_VARIABLE, URL_VARIABLE

TIMEOUT_S = 30
PAGE = Path(__file__).resolve().parents[2] / "notebooks" / "10-workshop-join-page.ipynb"


@pytest.fixture(scope="module")
def presenter() -> Iterator[workshop.Presenter]:
    with workshop.start() as running:
        yield running


@pytest.fixture(scope="module")
def invite(presenter: workshop.Presenter) -> dict[str, Any]:
    room = presenter.client.create_room(name="browser-workshop")
    return presenter.open_room(room["arn"], capabilities=["SEND_MESSAGE"], max_tokens=20)


@pytest.fixture(scope="module")
def attendee_page(presenter: workshop.Presenter, invite: dict[str, Any],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page's URL, served by Voila with the workshop's URL, code and fingerprint filled in."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(URL_VARIABLE, presenter.url)
        env.setenv(CODE_VARIABLE, invite["code"])
        env.setenv(FINGERPRINT_VARIABLE, presenter.fingerprint or "")
        port = free_port()
        with server_process([sys.executable, "-m", "voila", str(PAGE), "--no-browser", f"--port={port}",
                             "--Voila.ip=127.0.0.1", f"--Voila.base_url={BASE_URL}"], port,
                            tmp_path_factory.mktemp("voila-home"), "voila") as url:
            yield url + BASE_URL


class Ben:
    """Another attendee, joined with the room code in this process; every message he gets lands in a queue."""

    def __init__(self, chat: BackgroundChatRoom) -> None:
        self.chat = chat
        self.messages: queue.Queue[frames.ChatMessage] = queue.Queue()
        chat.on("message", self.messages.put)

    def receives(self, content: str) -> frames.ChatMessage:
        while True:
            message = self.messages.get(timeout=TIMEOUT_S)
            if message.content == content:
                return message


@contextlib.contextmanager
def attendee_in(presenter: workshop.Presenter, invite: dict[str, Any]) -> Iterator[Ben]:
    joined = workshop.join(presenter.url, invite["code"], "Ben", fingerprint=presenter.fingerprint)
    with BackgroundChatRoom(joined.messaging_url, joined.token_provider(), ssl=joined.ssl) as chat:
        yield Ben(chat)


@pytest.fixture
def ben(presenter: workshop.Presenter, invite: dict[str, Any]) -> Iterator[Ben]:
    with attendee_in(presenter, invite) as joined:
        yield joined


def open_form(page: Any, url: str) -> None:
    page.set_default_timeout(TIMEOUT_S * 1000)
    page.goto(url, timeout=90_000)  # Voila runs the notebook before it answers
    page.wait_for_selector(".ivs-join-form")


def row(page: Any, text: str) -> Any:
    return page.locator(".ivs-chat-row").filter(has=page.locator(".ivs-chat-text").get_by_text(text, exact=True))


def test_an_attendee_types_a_name_joins_and_chats(page: Any, attendee_page: str, presenter: workshop.Presenter,
                                                  invite: dict[str, Any], ben: Ben) -> None:
    open_form(page, attendee_page)
    assert page.input_value(".ivs-join-url input") == presenter.url
    assert page.input_value(".ivs-join-code input") == invite["code"]
    page.fill(".ivs-join-name input", "Grace")
    page.click(".ivs-join-button")

    page.wait_for_selector(".ivs-chat-state-connected")
    assert page.locator(".ivs-join-name").count() == 0  # the panel took the form's place
    assert page.locator(".ivs-player").count() == 0  # this room has no stream: the chat alone
    ben.chat.send_message("hello from Ben")
    row(page, "hello from Ben").wait_for()

    page.fill(".ivs-chat-input", "hello from Grace")
    page.press(".ivs-chat-input", "Enter")
    message = ben.receives("hello from Grace")
    assert message.sender.attributes == {"displayName": "Grace"}


def test_an_attendee_who_reaches_only_the_page_watches_the_stream(page: Any, attendee_page: str,
                                                                presenter: workshop.Presenter) -> None:
    """As on a hub: the browser reaches Voila and nothing else of the presenter's machine, so the
    room's loopback stream plays through the page's kernel."""
    stream = presenter.sandbox.start_test_stream()
    room = presenter.client.create_room(name="browser-workshop-live")
    live = presenter.open_room(room["arn"], capabilities=["SEND_MESSAGE"], max_tokens=5, playback_url=stream)
    url = attendee_page.replace("127.0.0.1", HUB_HOST)
    aborted = only_the_server(page, f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
    problems = page_errors(page)
    open_form(page, url)
    page.fill(".ivs-join-code input", live["code"])
    page.fill(".ivs-join-name input", "Grace")
    page.click(".ivs-join-button")

    page.wait_for_selector(".ivs-chat-state-connected")
    with attendee_in(presenter, live) as ben:
        ben.chat.send_message("can you see the stream?")
        row(page, "can you see the stream?").wait_for()
    page.wait_for_function("() => document.querySelector('.ivs-player video')?.currentTime > 2", timeout=90_000)
    assert page.get_attribute(".ivs-player", "data-route") == "relay"
    assert aborted == []  # a page on another host goes to the relay without trying the stream itself
    assert problems == []


def test_a_wrong_room_code_is_explained_on_the_page(page: Any, attendee_page: str) -> None:
    open_form(page, attendee_page)
    page.fill(".ivs-join-code input", "ZZZZ-ZZZZ")
    page.fill(".ivs-join-name input", "Grace")
    page.click(".ivs-join-button")

    message = page.locator(".ivs-join-message").filter(has_text="There is no room with the code ZZZZ-ZZZZ")
    message.wait_for()
    assert "Check the code with the presenter" in message.text_content()
    assert page.locator(".ivs-chat-state").count() == 0
