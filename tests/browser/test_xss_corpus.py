"""Every chat string ChatPanel shows is text, never markup: an XSS corpus in JupyterLab under Chromium.

Each payload of ``xss_payloads`` goes into the room through the sandbox as message content, as a
display name (token attribute, which the avatar's initial comes from), as a user id (which the
avatar's colour comes from), as message attributes, as a custom event's name and attributes
(SendEvent) and as a moderator's disconnect notice (user id and reason). Each payload's sender
then says a second message with a link in it, which the panel groups under the first. Message
attributes never reach the view (the panel shows content only), so only the trap covers them.

One notebook runs one panel. Every payload would call ``window.__xss(label)`` if the page ever ran
it, and a trap installed before JupyterLab loads records such calls. The test checks that the trap
stayed empty, that each payload is the exact text of the element that shows it, that each
avatar's initial is the name's first letter, and that nothing active (handlers, scripts, frames,
links other than http(s) ones opening with ``rel="noopener noreferrer"``) exists inside the panel;
a control then shows that the trap does fire for markup parsed into this page.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from xss_payloads import payloads

from ivs_widgets.chat import BackgroundChatRoom, ChatToken
from ivs_widgets.protocol.facts import MAX_ATTRIBUTES_BYTES
from ivs_widgets.protocol.rules import attributes_bytes
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.validation import service_model

TIMEOUT_MS = 30_000
NOTEBOOK = "xss_corpus.ipynb"
MAX_LENGTH = service_model().shape_for("RoomMaxMessageLength").metadata["max"]
MAX_RATE = service_model().shape_for("RoomMaxMessageRatePerSecond").metadata["max"]
MAX_USER_ID = service_model().shape_for("UserID").metadata["max"]
MAX_EVENT_NAME = service_model().shape_for("EventName").metadata["max"]
MAX_REASON = service_model().shape_for("Reason").metadata["max"]
#: Stay under every per-second limit (room message rate, SendEvent and DisconnectUser TPS) with room to spare.
ACTIONS_PER_SECOND = 0.8 * MAX_RATE
HISTORY_LIMIT = 1000  # above the corpus's row count: nothing scrolls out of the history

#: Installed before JupyterLab loads, in every frame: records each marker call in the top page.
TRAP = """
window.__xssCalls = [];
window.__xss = (label) => {
  try { window.top.__xssCalls.push(String(label)); } catch (crossOrigin) { window.__xssCalls.push(String(label)); }
};
"""
#: Each row of the panel as the viewer sees it, from the DOM alone.
ROWS = """() => [...document.querySelectorAll('.ivs-chat-list > li')].map((li) => {
  const text = (selector) => li.querySelector(selector)?.textContent ?? null;
  if (li.classList.contains('ivs-chat-message')) {
    return ['message', text('.ivs-chat-name'), text('.ivs-chat-text'), text('.ivs-chat-avatar'),
            li.classList.contains('ivs-chat-continued')];
  }
  if (li.classList.contains('ivs-chat-event')) {
    const attrs = [...li.querySelectorAll('.ivs-chat-attr')].map((pair) =>
      [pair.querySelector('.ivs-chat-attr-key').textContent, pair.querySelector('.ivs-chat-attr-value').textContent]);
    return ['event', text('.ivs-chat-event-name'), attrs];
  }
  return ['notice', text('.ivs-chat-text')];
})"""
#: Anything inside the panel that could run code or load a document: a tag the panel never builds
#: itself, an on* or javascript: attribute, a link that is not a plain http(s) one opening in a new
#: tab with no opener, or markup inside a field that holds chat text (links only in message text).
ACTIVE = """() => {
  const harmless = new Set(['DIV', 'SPAN', 'BUTTON', 'OL', 'LI', 'TIME', 'FORM', 'INPUT']);
  const plainLink = (a) => ['http:', 'https:'].includes(a.protocol) && a.target === '_blank'
    && a.rel === 'noopener noreferrer' && !a.childElementCount
    && [...a.attributes].map((attr) => attr.name).sort().join() === 'class,href,rel,target';
  const found = [];
  for (const node of document.querySelectorAll('.ivs-chat, .ivs-chat *')) {
    const link = node.tagName === 'A';
    if (link ? !plainLink(node) : !harmless.has(node.tagName)) found.push(node.outerHTML.slice(0, 200));
    for (const attr of node.attributes) {
      const parsed = link && attr.name === 'href';  // plainLink checks its parsed protocol
      if (/^on/i.test(attr.name) || (!parsed && /javascript:/i.test(attr.value))) {
        found.push(`${node.tagName} ${attr.name}=${attr.value}`);
      }
    }
  }
  const fields = '.ivs-chat-name, .ivs-chat-avatar, .ivs-chat-notice .ivs-chat-text, .ivs-chat-event-name, ' +
    '.ivs-chat-attr-key, .ivs-chat-attr-value';
  for (const node of document.querySelectorAll(fields)) {
    if (node.childElementCount) found.push(`${node.className} has child elements`);
  }
  for (const node of document.querySelectorAll('.ivs-chat-message .ivs-chat-text')) {
    if ([...node.children].some((child) => child.tagName !== 'A')) found.push('message text has markup');
  }
  return found;
}"""
#: The text of every link in the panel.
LINKS = "() => [...document.querySelectorAll('.ivs-chat a')].map((a) => a.textContent)"
#: The control: markup parsed into this page does run, so an empty trap means the panel parsed none.
CONTROL = """() => {
  const probe = document.createElement('div');
  probe.innerHTML = `<img src=x onerror="window.__xss('control'); this.parentNode.remove()">`;
  document.body.append(probe);
}"""

CONFIG = """\
CONTROL_ENDPOINT, MESSAGING_URL, REGION = {control!r}, {messaging!r}, {region!r}
ACCESS_KEY_ID, SECRET_ACCESS_KEY = {key!r}, {secret!r}
ROOM_ARN, HISTORY_LIMIT, MAX_LENGTH = {room!r}, {history_limit!r}, {max_length!r}
"""
PANEL = """\
import boto3
from ivs_widgets.chat import ChatToken
from ivs_widgets.widgets import ChatPanel

CAPABILITIES = ["SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER"]
ivschat = boto3.client("ivschat", endpoint_url=CONTROL_ENDPOINT, region_name=REGION,
                       aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

def token_provider():
    return ChatToken.from_response(ivschat.create_chat_token(
        roomIdentifier=ROOM_ARN, userId="viewer", capabilities=CAPABILITIES,
        attributes={"displayName": "Viewer"}))

panel = ChatPanel(MESSAGING_URL, token_provider, title="XSS corpus", capabilities=CAPABILITIES,
                  history_limit=HISTORY_LIMIT, max_length=MAX_LENGTH)
panel
"""

Row = list[Any]
Step = Callable[[], None]


class Pacer:
    """Spaces actions at least ``1 / per_second`` apart: the room and the control plane count
    requests per sliding second and refuse the excess (429, ThrottlingException)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next = time.monotonic()

    def wait(self) -> None:
        time.sleep(max(0.0, self.next - time.monotonic()))
        self.next = time.monotonic() + self.interval


def attributes_for(payload: str) -> dict[str, str]:
    """The payload as both key and value if 1 KB allows, else as the value, else nothing."""
    for attributes in ({payload: payload}, {"xss": payload}):
        if attributes_bytes(attributes) <= MAX_ATTRIBUTES_BYTES:
            return attributes
    return {}


def initial(name: str) -> str:
    """The avatar's initial: the first letter or digit with its combining marks, in upper case."""
    for n, char in enumerate(name):
        if unicodedata.category(char)[0] in "LN":
            end = n + 1
            while end < len(name) and unicodedata.category(name[end])[0] == "M":
                end += 1
            return name[n:end].upper()
    raise AssertionError(f"every name in the corpus has a letter or digit: {name!r}")


def link_for(label: str) -> str:
    return f"https://example.invalid/{label}"


def corpus_plan(sandbox: Sandbox, ivschat: Any, room_arn: str) -> tuple[list[Step], list[Row]]:
    """The sends, in order, and the rows the viewer must see for them, in the same order."""

    def token(user_id: str, attributes: dict[str, str]) -> Callable[[], ChatToken]:
        return lambda: ChatToken.from_response(ivschat.create_chat_token(
            roomIdentifier=room_arn, userId=user_id, capabilities=["SEND_MESSAGE"], attributes=attributes))

    def say(user_id: str, attributes: dict[str, str], content: str, message_attributes: dict[str, str]) -> Step:
        def step() -> None:
            with BackgroundChatRoom(sandbox.messaging_endpoint, token(user_id, attributes)) as sender:
                sender.send_message(content, message_attributes or None)
        return step

    def event(name: str, attributes: dict[str, str]) -> Step:
        return lambda: ivschat.send_event(roomIdentifier=room_arn, eventName=name, attributes=attributes)

    def kick(user_id: str, reason: str) -> Step:
        return lambda: ivschat.disconnect_user(roomIdentifier=room_arn, userId=user_id, reason=reason)

    steps: list[Step] = []
    rows: list[Row] = []
    for label, text in payloads(MAX_LENGTH):
        attributes = attributes_for(text)
        as_name = attributes_bytes({"displayName": text}) <= MAX_ATTRIBUTES_BYTES
        name = text if as_name else f"sender of {label}"
        steps.append(say(f"sender-{label}", {"displayName": name}, text, attributes))
        rows.append(["message", name, text, initial(name), False])
        again = f"{label} again: {link_for(label)}."
        steps.append(say(f"sender-{label}", {"displayName": name}, again, {}))
        rows.append(["message", name, again, initial(name), True])
        event_name = text if len(text) <= MAX_EVENT_NAME else f"event-{label}"
        steps.append(event(event_name, attributes))
        rows.append(["event", event_name, [list(pair) for pair in attributes.items()]])
        if len(text) <= min(MAX_USER_ID, MAX_REASON):
            steps += [say(text, {}, f"{label} as a user id", {}), kick(text, text)]
            rows += [["message", text, f"{label} as a user id", initial(text), False],
                     ["notice", f"{text} was disconnected by a moderator: {text}"]]
    return steps, rows


@pytest.fixture
def room(ivschat: Any) -> dict[str, Any]:
    return ivschat.create_room(name="xss-corpus", maximumMessageRatePerSecond=MAX_RATE,
                               maximumMessageLength=MAX_LENGTH)


@pytest.fixture
def chat_page(page: Any, run_all: Any, lab_root: Path, jupyterlab: str, sandbox: Sandbox,
              room: dict[str, Any]) -> Iterator[Any]:
    """JupyterLab with the trap in place and a connected panel in the room; the kernel ends after."""
    config = CONFIG.format(control=sandbox.control_endpoint, messaging=sandbox.messaging_endpoint,
                           region=sandbox.region, key=sandbox.config.access_key_id,
                           secret=sandbox.config.secret_access_key, room=room["arn"],
                           history_limit=HISTORY_LIMIT, max_length=MAX_LENGTH)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(config), nbformat.v4.new_code_cell(PANEL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_root / NOTEBOOK)
    page.add_init_script(TRAP)
    run_all(NOTEBOOK)
    page.set_default_timeout(TIMEOUT_MS)
    page.wait_for_selector(".ivs-chat-state-connected", timeout=90_000)
    yield page
    # The page's request context carries JupyterLab's XSRF cookie, which a DELETE needs.
    xsrf = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}.get("_xsrf", "")
    for session in page.request.get(f"{jupyterlab}/api/sessions").json():
        if session["path"] == NOTEBOOK:
            page.request.delete(f"{jupyterlab}/api/sessions/{session['id']}", headers={"X-XSRFToken": xsrf})


def test_no_payload_runs_and_each_shows_as_its_exact_text(chat_page: Any, sandbox: Sandbox, ivschat: Any,
                                                           room: dict[str, Any]) -> None:
    page = chat_page
    steps, expected = corpus_plan(sandbox, ivschat, room["arn"])
    pacer = Pacer(ACTIONS_PER_SECOND)
    for step in steps:  # one at a time, each confirmed, so the rows arrive in this order
        pacer.wait()
        step()
    page.wait_for_function(f"() => document.querySelectorAll('.ivs-chat-list > li').length >= {len(expected)}",
                           timeout=TIMEOUT_MS)

    shown = page.evaluate(ROWS)
    assert len(shown) == len(expected)
    mismatches = [(n, want, got) for n, (want, got) in enumerate(zip(expected, shown)) if want != got]
    assert not mismatches, f"{len(mismatches)} rows differ, first: {mismatches[:3]}"
    assert page.evaluate(ACTIVE) == []
    links = page.evaluate(LINKS)
    assert {link_for(label) for label, _ in payloads(MAX_LENGTH)} <= set(links)
    assert page.evaluate("() => window.__xssCalls") == []

    page.evaluate(CONTROL)
    page.wait_for_function("() => window.__xssCalls.length > 0")
    assert page.evaluate("() => window.__xssCalls") == ["control"]
