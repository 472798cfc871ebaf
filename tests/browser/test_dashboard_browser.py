"""PresenterDashboard in JupyterLab under real Chromium: attendees' markup is shown as text, never run.

This test process runs the workshop sandbox (``workshop.start()``) and the attendees; the notebook's
kernel is the presenter, with the credentials and CA file the sandbox prints. Attendees join with
display names that are script-injection payloads. The dashboard shows them first from its opening
poll and then, for a latecomer, from its polling thread. The presenter also types a payload as an
event name. The test checks that each payload is the exact text of the element that shows it, that
nothing active exists inside the dashboard and that no payload ran; a control then shows that the
same HTML sink does run markup that is not escaped.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ivs_widgets import workshop
from ivs_widgets.chat import BackgroundChatRoom
from ivs_widgets.chat.room import ChatError
from ivs_widgets.protocol import frames
from ivs_widgets.workshop import Attendee, Presenter

TIMEOUT_S = 30
NOTEBOOK = "dashboard.ipynb"
IMG_XSS = "<img src=x onerror=window.__xss=1>"
SCRIPT_XSS = "<script>window.__xss=1</script>"
SVG_XSS = "\"><svg onload=window.__xss=1>"

CONFIG = """\
URL, REGION, CA_FILE = {url!r}, {region!r}, {ca_file!r}
ACCESS_KEY_ID, SECRET_ACCESS_KEY = {key!r}, {secret!r}
"""
DASHBOARD = """\
from ivs_widgets.workshop import Presenter

presenter = Presenter(URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION, ca_file=CA_FILE)
dashboard = presenter.dashboard()
dashboard
"""
#: Anything inside the dashboard that could run code or load a document.
ACTIVE = """() => {
  const harmless = new Set(['DIV', 'SPAN', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'B', 'BUTTON', 'I', 'INPUT',
                            'TEXTAREA', 'SELECT', 'OPTION', 'LABEL', 'STYLE', 'svg', 'rect', 'line', 'title']);
  const found = [];
  for (const node of document.querySelectorAll('.ivs-dashboard, .ivs-dashboard *')) {
    if (!harmless.has(node.tagName)) found.push(node.tagName);
    for (const attr of node.attributes) {
      if (/^on/i.test(attr.name) || /javascript:/i.test(attr.value)) found.push(`${node.tagName} ${attr.name}`);
    }
  }
  return found;
}"""
NAMES = "() => [...document.querySelectorAll('.ivs-dash-users td.ivs-dash-name')].map((td) => td.textContent)"
#: The user picker's options; ipywidgets shows spaces in them as no-break spaces.
USER_OPTIONS = """() => [...[...document.querySelectorAll('.ivs-dashboard select')].at(-1).options]
  .map((option) => option.textContent.replace(/\\u00a0/g, ' '))"""
#: The control: the status line's HTML sink runs markup that is not escaped.
CONTROL = """() => {
  document.querySelector('.ivs-dash-status .widget-html-content').innerHTML =
    '<img src=x onerror="window.__control = 1">';
}"""


class Seat:
    """An attendee chatting from this process; the events they receive land in a queue."""

    def __init__(self, attendee: Attendee) -> None:
        self.attendee = attendee
        self.chat = BackgroundChatRoom(attendee.messaging_url, attendee.token_provider(), ssl=attendee.ssl)
        self.events: queue.Queue[frames.ChatEvent] = queue.Queue()
        self.chat.on("event", self.events.put)
        self.chat.connect()
        self.chat.send_message("hello")  # the echo: the sandbox counts this connection in the room

    def receives(self, event_name: str) -> frames.ChatEvent:
        while True:
            event = self.events.get(timeout=TIMEOUT_S)
            if event.event_name == event_name:
                return event


@pytest.fixture
def presenter() -> Iterator[Presenter]:
    with workshop.start() as running:
        yield running


@pytest.fixture
def invite(presenter: Presenter) -> dict[str, Any]:
    room = presenter.client.create_room(name="Workshop")
    return presenter.open_room(room["arn"])


@pytest.fixture
def seat(presenter: Presenter, invite: dict[str, Any]) -> Iterator[Any]:
    seats: list[Seat] = []

    def join(name: str) -> Seat:
        seats.append(Seat(workshop.join(presenter.url, invite["code"], name, fingerprint=presenter.fingerprint)))
        return seats[-1]

    yield join
    for joined in seats:
        joined.chat.close()


@pytest.fixture
def dashboard_page(page: Any, run_all: Any, lab_root: Path, jupyterlab: str, presenter: Presenter) -> Iterator[Any]:
    """The presenter's notebook running in JupyterLab; its kernel ends afterwards."""
    config = CONFIG.format(url=presenter.url, region=presenter.region, ca_file=presenter.ca_file,
                           key=presenter.sandbox.config.access_key_id,
                           secret=presenter.sandbox.config.secret_access_key)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(config),
                                               nbformat.v4.new_code_cell(DASHBOARD)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_root / NOTEBOOK)
    run_all(NOTEBOOK)
    page.set_default_timeout(TIMEOUT_S * 1000)
    yield page
    xsrf = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}.get("_xsrf", "")
    for session in page.request.get(f"{jupyterlab}/api/sessions").json():
        if session["path"] == NOTEBOOK:
            page.request.delete(f"{jupyterlab}/api/sessions/{session['id']}", headers={"X-XSRFToken": xsrf})


def test_attendee_markup_is_shown_as_text_and_never_runs(seat: Any, presenter: Presenter,
                                                         request: pytest.FixtureRequest) -> None:
    img, script = seat(IMG_XSS), seat(SCRIPT_XSS)
    with pytest.raises(ChatError):
        img.chat.delete_message("some-id")  # a 403 in the dashboard's recent errors, with img's user id
    page = request.getfixturevalue("dashboard_page")  # opened once they are in the room
    expected = sorted([(img.attendee.user_id, IMG_XSS), (script.attendee.user_id, SCRIPT_XSS)])

    page.wait_for_function(f"() => ({NAMES})().length === 2", timeout=90_000)
    assert page.evaluate(NAMES) == [name for _, name in expected]
    assert page.evaluate(USER_OPTIONS) == [f"{name} ({user_id})" for user_id, name in expected]
    error_row = page.locator(".ivs-dash-errors tbody tr")
    assert error_row.locator(".ivs-dash-message").text_content() == \
        "connection does not have the DELETE_MESSAGE capability"
    assert error_row.locator(".ivs-dash-user-id").text_content() == img.attendee.user_id

    late = seat(SVG_XSS)  # only the kernel's polling thread can show this one
    page.wait_for_function(f"() => ({NAMES})().length === 3")
    assert SVG_XSS in page.evaluate(NAMES)

    page.fill(".ivs-dashboard input[placeholder^='event name']", SCRIPT_XSS)
    page.click(".ivs-dashboard button:has-text('Send event')")
    assert late.receives(SCRIPT_XSS).event_name == SCRIPT_XSS
    page.wait_for_function("() => document.querySelector('.ivs-dash-status').textContent.includes('Sent event')")
    assert f"Sent event “{SCRIPT_XSS}” to Workshop." in page.text_content(".ivs-dash-status")

    assert page.evaluate(ACTIVE) == []
    assert page.evaluate("() => window.__xss") is None

    page.evaluate(CONTROL)
    page.wait_for_function("() => window.__control === 1")
    assert page.evaluate("() => window.__xss") is None
