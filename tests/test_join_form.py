"""JoinForm (the attendee's Voila page) against a real workshop sandbox, without a browser.

The form is filled in and its Join button clicked from Python, as the page's kernel sees it; the
browser side is in tests/browser/test_workshop_browser.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import ipywidgets
import pytest

from ivs_widgets import workshop
from ivs_widgets.widgets import ChatPanel, LiveStreamPanel
from ivs_widgets.widgets.join_form import CODE_VARIABLE, FINGERPRINT_VARIABLE, URL_VARIABLE, JoinForm


@pytest.fixture(scope="module")
def presenter() -> Iterator[workshop.Presenter]:
    with workshop.start() as running:
        yield running


@pytest.fixture
def invite(presenter: workshop.Presenter) -> dict[str, Any]:
    room = presenter.client.create_room(name="join-form")
    return presenter.open_room(room["arn"])


@pytest.fixture
def form(presenter: workshop.Presenter, invite: dict[str, Any]) -> Iterator[JoinForm]:
    joining = JoinForm(presenter.url, invite["code"], presenter.fingerprint or "", "Ada")
    yield joining
    joining.close()


def test_the_presenter_fills_in_the_workshop_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_VARIABLE, "https://192.168.1.20:4566")
    monkeypatch.setenv(CODE_VARIABLE, "K7QX-2M9P")
    monkeypatch.setenv(FINGERPRINT_VARIABLE, "7C:EF")
    form = JoinForm.from_environment()
    assert (form.url.value, form.code.value, form.fingerprint.value, form.name.value) == \
        ("https://192.168.1.20:4566", "K7QX-2M9P", "7C:EF", "")
    assert repr(form) == "JoinForm(url='https://192.168.1.20:4566', code='K7QX-2M9P', not joined)"


def test_clicking_join_puts_the_chat_in_place_of_the_form(form: JoinForm) -> None:
    form.button.click()
    assert form.children == (form.panel,)
    assert isinstance(form.panel, ChatPanel)  # the room has no stream
    assert form.attendee is not None and form.attendee.display_name == "Ada"
    assert form.panel.send("hello").sender.attributes == {"displayName": "Ada"}


def test_a_room_with_a_stream_shows_the_player_beside_the_chat(presenter: workshop.Presenter) -> None:
    room = presenter.client.create_room(name="join-form-live")
    invite = presenter.open_room(room["arn"], playback_url="http://127.0.0.1:9/live.m3u8")
    form = JoinForm(presenter.url, invite["code"], presenter.fingerprint or "", "Ada")
    try:
        assert form.join()
        assert isinstance(form.panel, LiveStreamPanel)
        assert form.panel.player.url == "http://127.0.0.1:9/live.m3u8"
    finally:
        form.close()


def test_without_a_fingerprint_the_page_says_the_certificate_was_not_checked(form: JoinForm) -> None:
    form.fingerprint.value = ""
    assert form.join()
    note = form.children[1]
    assert isinstance(note, ipywidgets.Label) and "was not checked" in note.value


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("field, value, words", [
    ("code", "ZZZZ-ZZZZ", "There is no room with the code ZZZZ-ZZZZ. Check the code with the presenter."),
    ("fingerprint", "AA:BB:CC", "does not have the presenter's certificate fingerprint"),
    ("url", "https://127.0.0.1:{port}", "Cannot reach the workshop at https://127.0.0.1:{port}"),
    ("url", "not a url", "'not a url' is not a workshop URL"),
    ("name", "  ", "Please enter your name."),
])
def test_a_failed_join_says_why_and_keeps_the_form(form: JoinForm, field: str, value: str, words: str) -> None:
    port = unused_port()
    getattr(form, field).value = value.format(port=port)
    assert not form.join()
    assert words.format(port=port) in form.message.value
    assert form.panel is None and form.name in form.children
    assert not form.button.disabled


def test_a_closed_room_is_explained(form: JoinForm, presenter: workshop.Presenter, invite: dict[str, Any]) -> None:
    presenter.close_room(invite["code"])
    assert not form.join()
    assert form.message.value == "The presenter has closed this room."


def test_what_the_attendee_typed_is_shown_as_text_never_as_html(form: JoinForm) -> None:
    form.code.value = "<img src=x onerror=alert(1)>"
    assert not form.join()
    assert isinstance(form.message, ipywidgets.Label)  # a Label's value is rendered as text
    assert "<img src=x onerror=alert(1)>" in form.message.value
