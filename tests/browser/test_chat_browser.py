"""ChatPanel in JupyterLab under real Chromium, talking to a sandbox that this test process runs.

Each test writes a notebook whose first cell holds the sandbox's endpoints, the room and the
sandbox's (public, local) credentials; the kernel mints its own tokens with boto3, as a notebook on
AWS would. The other side of the chat is "alice", a BackgroundChatRoom in this process.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labdriver import ARTIFACTS, free_port, server_process

from ivs_widgets.chat import BackgroundChatRoom, ChatToken
from ivs_widgets.protocol import frames
from ivs_widgets.sandbox import Sandbox

TIMEOUT_S = 30
VIEWER = "viewer"
ALL = ["SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER"]
IMG_XSS = "<img src=x onerror=window.__xss=1>"
SCRIPT_XSS = "<script>window.__xss=1</script>"

CONFIG = """\
CONTROL_ENDPOINT = {control!r}
MESSAGING_URL = {messaging!r}
REGION = {region!r}
ROOM_ARN = {room!r}
ACCESS_KEY_ID, SECRET_ACCESS_KEY = {key!r}, {secret!r}
USER_ID, DISPLAY_NAME, CAPABILITIES = {user!r}, {display!r}, {capabilities!r}
HISTORY_LIMIT = {history_limit!r}
"""
PANEL = """\
import boto3
from ivs_widgets.chat import ChatToken
from ivs_widgets.widgets import ChatPanel

ivschat = boto3.client("ivschat", endpoint_url=CONTROL_ENDPOINT, region_name=REGION,
                       aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

def token_provider():
    return ChatToken.from_response(ivschat.create_chat_token(
        roomIdentifier=ROOM_ARN, userId=USER_ID, capabilities=CAPABILITIES,
        attributes={"displayName": DISPLAY_NAME}))

panel = ChatPanel(MESSAGING_URL, token_provider, title="Browser test", capabilities=CAPABILITIES,
                  history_limit=HISTORY_LIMIT)
panel
"""
BUSY = """\
import threading
released = threading.Event()
panel.on_message(lambda message: message.content == "release" and released.set())
panel.send("the kernel is busy")
released.wait(300)
panel.send("the kernel is free")
"""
#: Waits for alice's "prefill now", then shows three logged messages of bob's: the second 4 minutes
#: after the first (same run), the third 6 minutes after the first (a new run).
PREFILL = """\
import threading
from ivs_widgets.protocol import frames

go = threading.Event()
panel.on_message(lambda message: message.content == "prefill now" and go.set())
go.wait(300)
bob = frames.Sender("bob", {"displayName": "Bob"})
panel.prefill(frames.ChatMessage(id=f"earlier{n}", content=f"earlier {n}", sender=bob,
                                 send_time=f"2025-01-02T10:0{minute}:00.123456789Z")
              for n, minute in enumerate((0, 4, 6)))
"""
TOO_LONG = """\
from ivs_widgets.chat import ChatError
try:
    panel.send("x" * (panel.max_length + 1))
except ChatError:
    pass
"""
#: Each row as [text, initial, avatar colour, continued] for a message, [class] for anything else.
SHOWN = """() => [...document.querySelectorAll('.ivs-chat-list > li')].map((li) => {
  if (!li.classList.contains('ivs-chat-message')) return [li.className];
  const avatar = li.querySelector('.ivs-chat-avatar');
  return [li.querySelector('.ivs-chat-text').textContent, avatar.textContent,
          getComputedStyle(avatar).backgroundColor, li.classList.contains('ivs-chat-continued')];
})"""


@pytest.fixture
def room(ivschat: Any) -> dict[str, Any]:
    """A room at the service's highest message rate, so a test can fill the panel quickly."""
    return ivschat.create_room(name="browser", maximumMessageRatePerSecond=100)


class Alice:
    """A chat user in the test process; every frame she receives lands in a queue."""

    def __init__(self, chat: BackgroundChatRoom) -> None:
        self.chat = chat
        self.frames: queue.Queue[frames.Frame] = queue.Queue()
        for kind in ("message", "message_delete"):
            chat.on(kind, self.frames.put)

    def receives(self, predicate: Callable[[Any], bool]) -> Any:
        while True:
            frame = self.frames.get(timeout=TIMEOUT_S)
            if predicate(frame):
                return frame


@pytest.fixture
def alice(sandbox: Sandbox, ivschat: Any, room: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Alice]:
    display = getattr(request, "param", "Alice")

    def token() -> ChatToken:
        return ChatToken.from_response(ivschat.create_chat_token(
            roomIdentifier=room["arn"], userId="alice", capabilities=["SEND_MESSAGE"],
            attributes={"displayName": display}))

    with BackgroundChatRoom(sandbox.messaging_endpoint, token) as chat:
        yield Alice(chat)


def write_notebook(path: Path, sandbox: Sandbox, room_arn: str, display_name: str = "Viewer",
                   more: tuple[str, ...] = (), history_limit: int = 300) -> None:
    """A notebook that shows a panel, then runs the code cells in ``more``."""
    config = CONFIG.format(control=sandbox.control_endpoint, messaging=sandbox.messaging_endpoint,
                           region=sandbox.region, room=room_arn, key=sandbox.config.access_key_id,
                           secret=sandbox.config.secret_access_key, user=VIEWER, display=display_name,
                           capabilities=ALL, history_limit=history_limit)
    cells = [nbformat.v4.new_code_cell(source) for source in (config, PANEL, *more)]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture
def open_chat(run_all: Any, page: Any, lab_root: Path, jupyterlab: str, sandbox: Sandbox,
              room: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``open_chat(display_name, ...)``: write the notebook, run it, wait for the panel to connect."""
    name = f"{request.node.originalname}.ipynb"

    def run(display_name: str = "Viewer", more: tuple[str, ...] = (), history_limit: int = 300) -> Any:
        write_notebook(lab_root / name, sandbox, room["arn"], display_name, more, history_limit)
        run_all(name)
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.wait_for_selector(".ivs-chat-state-connected", timeout=90_000)
        return page

    yield run
    # End this notebook's kernel, and the panel's connection with it.
    for session in page.request.get(f"{jupyterlab}/api/sessions").json():
        if session["path"] == name:
            page.request.delete(f"{jupyterlab}/api/sessions/{session['id']}", headers=xsrf_header(page))


def xsrf_header(page: Any) -> dict[str, str]:
    """What JupyterLab's API wants on a change: the XSRF cookie that the page's request context carries."""
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return {"X-XSRFToken": cookies.get("_xsrf", "")}


@pytest.fixture
def theme(request: pytest.FixtureRequest, page: Any, jupyterlab: str) -> Iterator[str]:
    """JupyterLab's theme (the parameter) in the user settings for one test; then the default again."""
    url = f"{jupyterlab}/lab/api/settings/@jupyterlab/apputils-extension:themes"
    page.request.get(f"{jupyterlab}/lab")  # the page's first answer sets the XSRF cookie

    def choose(settings: dict[str, str]) -> None:
        answer = page.request.put(url, data=json.dumps({"raw": json.dumps(settings)}), headers=xsrf_header(page))
        assert answer.ok, answer.text()

    choose({"theme": request.param})
    yield request.param
    choose({})


def type_message(page: Any, text: str) -> None:
    page.fill(".ivs-chat-input", text)
    page.press(".ivs-chat-input", "Enter")


def row(page: Any, text: str) -> Any:
    """The chat row whose text is exactly ``text``."""
    return page.locator(".ivs-chat-row").filter(has=page.locator(".ivs-chat-text").get_by_text(text, exact=True))


def test_chat_round_trip_and_deletes(open_chat: Callable[..., Any], alice: Alice, ivschat: Any,
                                     room: dict[str, Any]) -> None:
    page = open_chat()
    assert page.get_attribute(".ivs-chat-input", "maxlength") == "500"
    page.fill(".ivs-chat-input", "hello from the browser")
    assert page.text_content(".ivs-chat-counter") == "22/500"
    page.press(".ivs-chat-input", "Enter")
    typed = alice.receives(lambda f: isinstance(f, frames.ChatMessage))
    assert (typed.content, typed.sender.user_id, typed.sender.attributes) == (
        "hello from the browser", VIEWER, {"displayName": "Viewer"})
    assert page.input_value(".ivs-chat-input") == "" and page.text_content(".ivs-chat-counter") == "0/500"

    doomed = alice.chat.send_message("delete me")
    removed_by_backend = alice.chat.send_message("the backend removes me")
    alice.chat.send_message("hello from python")
    shown = row(page, "hello from python")
    shown.wait_for()
    assert shown.locator(".ivs-chat-name").text_content() == "Alice"
    assert shown.locator(".ivs-chat-time").text_content().count(":") == 2

    target = row(page, "delete me")
    target.hover()  # moderator buttons show on hover
    target.locator(".ivs-chat-delete").click()
    target.wait_for(state="detached")
    deleted = alice.receives(lambda f: isinstance(f, frames.DeleteMessageEvent))
    assert deleted.message_id == doomed.id

    ivschat.delete_message(roomIdentifier=room["arn"], id=removed_by_backend.id)
    row(page, "the backend removes me").wait_for(state="detached")
    ivschat.send_event(roomIdentifier=room["arn"], eventName="poll_opened", attributes={"question": "tea?"})
    event = page.locator(".ivs-chat-event").filter(has_text="poll_opened")
    event.wait_for()
    assert event.locator(".ivs-chat-attr-key").text_content() == "question"
    assert event.locator(".ivs-chat-attr-value").text_content() == "tea?"
    assert page.locator(".ivs-chat-message").count() == 2


@pytest.mark.parametrize("alice", [SCRIPT_XSS], indirect=True, ids=["script-name"])
def test_markup_in_chat_is_shown_as_text(open_chat: Callable[..., Any], alice: Alice, ivschat: Any,
                                         room: dict[str, Any]) -> None:
    page = open_chat(display_name=IMG_XSS)
    type_message(page, SCRIPT_XSS)
    alice.receives(lambda f: isinstance(f, frames.ChatMessage) and f.content == SCRIPT_XSS)
    alice.chat.send_message(IMG_XSS)
    ivschat.send_event(roomIdentifier=room["arn"], eventName=IMG_XSS, attributes={SCRIPT_XSS: IMG_XSS})
    page.locator(".ivs-chat-event").wait_for()
    row(page, IMG_XSS).wait_for()

    names = page.locator(".ivs-chat-name").all_text_contents()
    texts = page.locator(".ivs-chat-message .ivs-chat-text").all_text_contents()
    assert (names, texts) == ([IMG_XSS, SCRIPT_XSS], [SCRIPT_XSS, IMG_XSS])
    assert page.text_content(".ivs-chat-event-name") == IMG_XSS
    assert page.text_content(".ivs-chat-attr-key") == SCRIPT_XSS
    assert page.text_content(".ivs-chat-attr-value") == IMG_XSS
    assert page.locator(".ivs-chat img, .ivs-chat script").count() == 0
    assert page.evaluate("() => window.__xss") is None


def test_messages_arrive_while_a_cell_is_busy(open_chat: Callable[..., Any], alice: Alice) -> None:
    page = open_chat(more=(BUSY,))

    def said_by_viewer(text: str) -> None:
        alice.receives(lambda f: isinstance(f, frames.ChatMessage) and f.sender.user_id == VIEWER
                       and f.content == text)

    said_by_viewer("the kernel is busy")  # the last cell now blocks until alice says "release"
    for n in range(3):
        alice.chat.send_message(f"while busy {n}")
    row(page, "while busy 2").wait_for()
    assert page.locator(".ivs-chat-message").count() == 4
    assert page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").count() == 1

    alice.chat.send_message("release")
    said_by_viewer("the kernel is free")
    type_message(page, "typed after the cell")  # browser→kernel messages wait for an idle kernel
    said_by_viewer("typed after the cell")


def test_history_is_capped_and_autoscroll_respects_a_reader(open_chat: Callable[..., Any], alice: Alice) -> None:
    page = open_chat(history_limit=20)
    for n in range(30):
        alice.chat.send_message(f"filler {n}")
    row(page, "filler 29").wait_for()
    assert page.locator(".ivs-chat-row").count() == 20  # the DOM keeps only the capped history
    at_bottom = "l => l.scrollHeight - l.scrollTop - l.clientHeight < 2"
    assert page.eval_on_selector(".ivs-chat-list", at_bottom)
    assert page.is_hidden(".ivs-chat-jump")

    page.eval_on_selector(".ivs-chat-list", "l => { l.scrollTop = 0; }")  # the reader scrolls up
    alice.chat.send_message("while you read")
    row(page, "while you read").wait_for(state="attached")
    assert page.text_content(".ivs-chat-jump") == "1 new message ↓"
    alice.chat.send_message("and this")
    page.wait_for_function("() => document.querySelector('.ivs-chat-jump').textContent === '2 new messages ↓'")
    assert page.eval_on_selector(".ivs-chat-list", "l => l.scrollTop") == 0
    page.eval_on_selector(".ivs-chat-list", "l => { l.scrollTop = l.scrollHeight; }")  # reads down to the end
    page.locator(".ivs-chat-jump").wait_for(state="hidden")

    page.eval_on_selector(".ivs-chat-list", "l => { l.scrollTop = 0; }")
    alice.chat.send_message("one more")
    row(page, "one more").wait_for(state="attached")
    assert page.text_content(".ivs-chat-jump") == "1 new message ↓"  # counted afresh
    page.click(".ivs-chat-jump")
    assert page.eval_on_selector(".ivs-chat-list", at_bottom)
    assert page.is_hidden(".ivs-chat-jump")

    alice.chat.send_message("following again")
    row(page, "following again").wait_for()
    assert page.eval_on_selector(".ivs-chat-list", at_bottom)
    assert page.is_hidden(".ivs-chat-jump")

    page.eval_on_selector(".ivs-chat-list", "l => { l.scrollTop = 0; }")
    type_message(page, "my reply")  # sending goes back to the end, where the reply shows
    row(page, "my reply").wait_for()
    assert page.eval_on_selector(".ivs-chat-list", at_bottom)


def test_a_moderator_disconnect_shows_and_reconnect_works(open_chat: Callable[..., Any], alice: Alice,
                                                         ivschat: Any, room: dict[str, Any]) -> None:
    page = open_chat()
    type_message(page, "am I still here?")
    alice.receives(lambda f: isinstance(f, frames.ChatMessage))
    row(page, "am I still here?").wait_for()  # the echo tells the panel which user it is

    ivschat.disconnect_user(roomIdentifier=room["arn"], userId=VIEWER, reason="be nice")
    page.wait_for_selector(".ivs-chat-state-disconnected")
    assert page.text_content(".ivs-chat-state") == "disconnected by a moderator"
    row(page, "viewer was disconnected by a moderator: be nice").wait_for()
    assert page.is_disabled(".ivs-chat-input")

    page.click(".ivs-chat-reconnect")
    page.wait_for_selector(".ivs-chat-state-connected")
    type_message(page, "back again")
    assert alice.receives(lambda f: isinstance(f, frames.ChatMessage)).content == "back again"


@contextlib.contextmanager
def voila(notebook: Path, home: Path) -> Iterator[str]:
    """Voila serving ``notebook`` on a free loopback port; yields its URL."""
    port = free_port()
    with server_process([sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
                         "--Voila.ip=127.0.0.1"], port, home, "voila") as url:
        yield url + "/"


def test_the_panel_works_in_voila(page: Any, tmp_path: Path, sandbox: Sandbox, room: dict[str, Any],
                                  alice: Alice) -> None:
    write_notebook(tmp_path / "voila.ipynb", sandbox, room["arn"])
    with voila(tmp_path / "voila.ipynb", tmp_path) as url:
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(url, timeout=90_000)  # Voila runs the notebook before it answers
        page.wait_for_selector(".ivs-chat-state-connected")
        alice.chat.send_message("hello voila")
        row(page, "hello voila").wait_for()
        type_message(page, "typed in voila")
        assert alice.receives(lambda f: isinstance(f, frames.ChatMessage) and f.sender.user_id == VIEWER).content == \
            "typed in voila"


def test_senders_have_stable_avatars_and_their_runs_are_grouped(open_chat: Callable[..., Any], alice: Alice,
                                                                 ivschat: Any, room: dict[str, Any]) -> None:
    page = open_chat(more=(PREFILL,))
    alice.chat.send_message("one")
    row(page, "one").wait_for()
    alice.chat.send_message("prefill now")
    row(page, "earlier 2").wait_for()  # logged messages go before the live ones
    alice.chat.send_message("two")
    ivschat.send_event(roomIdentifier=room["arn"], eventName="poll_opened")
    alice.chat.send_message("three")
    row(page, "three").wait_for()
    type_message(page, "mine")
    row(page, "mine").wait_for()
    alice.chat.send_message("four")
    row(page, "four").wait_for()

    shown = page.evaluate(SHOWN)
    texts = [entry[0] for entry in shown]
    assert texts == ["earlier 0", "earlier 1", "earlier 2", "one", "prefill now", "two",
                     "ivs-chat-row ivs-chat-event", "three", "mine", "four"]
    messages = {entry[0]: entry[1:] for entry in shown if len(entry) > 1}
    # Bob: 4 minutes after his first message is the same run, 6 minutes after it a new one.
    # Alice: the event ends her run; so does the viewer's message.
    continued = {text for text, (_, _, more) in messages.items() if more}
    assert continued == {"earlier 1", "prefill now", "two"}
    initials = {text: initial for text, (initial, _, _) in messages.items()}
    assert initials == {"earlier 0": "B", "earlier 1": "B", "earlier 2": "B", "one": "A", "prefill now": "A",
                        "two": "A", "three": "A", "mine": "V", "four": "A"}
    colours = {text: colour for text, (_, colour, _) in messages.items()}
    assert len({colours[text] for text in ("earlier 0", "earlier 1", "earlier 2")}) == 1
    assert len({colours[text] for text in ("one", "prefill now", "two", "three", "four")}) == 1
    assert colours["earlier 0"] != colours["one"]

    # Inside a run only the text shows; the time appears on hover.
    assert row(page, "earlier 0").locator(".ivs-chat-name").is_visible()
    assert row(page, "earlier 1").locator(".ivs-chat-name").is_hidden()
    assert row(page, "earlier 1").locator(".ivs-chat-avatar").is_hidden()
    assert row(page, "earlier 1").locator(".ivs-chat-time").is_hidden()
    row(page, "earlier 1").hover()
    assert row(page, "earlier 1").locator(".ivs-chat-time").is_visible()

    # The full date and time on hover, as the title; the machine-readable time as dateTime.
    time = row(page, "earlier 0").locator(".ivs-chat-time")
    assert time.evaluate("t => t.dateTime") == "2025-01-02T10:00:00.123Z"
    title, clock = time.evaluate("t => t.title"), time.text_content()
    assert "2025" in title and clock in title and len(title) > len(clock)

    # The same avatars and runs after the page is reloaded: the view renders again from the kernel.
    page.click(".jp-Notebook .jp-Cell .jp-InputPrompt >> nth=0")
    page.keyboard.press("Control+s")
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
    page.reload()
    page.wait_for_selector(".ivs-chat-state-connected", timeout=90_000)
    row(page, "four").wait_for()
    assert page.evaluate(SHOWN) == shown


@pytest.mark.parametrize("alice", ["https://alice.example/"], indirect=True, ids=["url-name"])
def test_links_open_safely_and_only_http(open_chat: Callable[..., Any], alice: Alice) -> None:
    page = open_chat()
    text = ("see https://example.com/wiki/Tea_(drink). or (http://example.org/?q=a&b=c), "
            "not javascript:alert(1), ftp://example.net/x or https://x/\"><b>bold</b>")
    alice.chat.send_message(text)
    shown = row(page, text)
    shown.wait_for()
    links = shown.locator("a").evaluate_all(
        "links => links.map((a) => [a.textContent, a.href, a.target, a.rel, a.attributes.length])")
    assert links == [
        ["https://example.com/wiki/Tea_(drink)", "https://example.com/wiki/Tea_(drink)", "_blank",
         "noopener noreferrer", 4],
        ["http://example.org/?q=a&b=c", "http://example.org/?q=a&b=c", "_blank", "noopener noreferrer", 4],
        ["https://x/", "https://x/", "_blank", "noopener noreferrer", 4],
    ]
    assert shown.locator(".ivs-chat-text b").count() == 0
    looks = shown.locator("a").first.evaluate(
        "a => [getComputedStyle(a).textDecorationLine, getComputedStyle(a).color === getComputedStyle(a.parentNode).color]")
    assert looks == ["underline", False]  # it looks like a link, in JupyterLab too
    # Only message text has links: a URL as a display name stays text.
    assert shown.locator(".ivs-chat-name").text_content() == "https://alice.example/"
    assert shown.locator(".ivs-chat-name a").count() == 0


def test_escape_clears_the_input(open_chat: Callable[..., Any], alice: Alice) -> None:
    page = open_chat()
    page.fill(".ivs-chat-input", "never mind")
    assert page.text_content(".ivs-chat-counter") == "10/500"
    page.press(".ivs-chat-input", "Escape")
    assert page.input_value(".ivs-chat-input") == ""
    assert page.text_content(".ivs-chat-counter") == "0/500"
    assert page.locator(".ivs-chat-input").evaluate("i => i === document.activeElement")  # still typing here
    type_message(page, "this one")
    assert alice.receives(lambda f: isinstance(f, frames.ChatMessage)).content == "this one"


#: For each selector, the text colour and the colour behind it (the nearest opaque background), as
#: RGBA bytes: a canvas converts whatever CSS colour syntax the browser computed.
COLOURS = """(selectors) => {
  const canvas = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  const rgba = (css) => {
    canvas.clearRect(0, 0, 1, 1);
    canvas.fillStyle = css;
    canvas.fillRect(0, 0, 1, 1);
    return [...canvas.getImageData(0, 0, 1, 1).data];
  };
  const behind = (node) => {
    for (; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] === 255) return colour;
    }
    return [255, 255, 255, 255];
  };
  return selectors.map((selector) => {
    const node = document.querySelector(selector);
    return [rgba(getComputedStyle(node).color), behind(node)];
  });
}"""
#: Every kind of text the panel shows, shown by the theme test.
TEXTS = [".ivs-chat-title", ".ivs-chat-state", ".ivs-chat-error", ".ivs-chat-message .ivs-chat-name",
         ".ivs-chat-message .ivs-chat-text", ".ivs-chat-time", ".ivs-chat-link", ".ivs-chat-avatar",
         ".ivs-chat-event-name", ".ivs-chat-attr-value", ".ivs-chat-input", ".ivs-chat-counter", ".ivs-chat-send"]


def luminance(rgb: list[float]) -> float:
    """WCAG relative luminance of an sRGB colour given as 0-255 channels."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def over(text: list[int], background: list[int]) -> list[float]:
    """A translucent text colour as it shows on its background."""
    alpha = text[3] / 255
    return [alpha * t + (1 - alpha) * b for t, b in zip(text[:3], background[:3])]


def contrast(text: list[int], background: list[int]) -> float:
    lighter, darker = sorted((luminance(over(text, background)), luminance(background[:3])), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"], indirect=True)
def test_the_panel_reads_well_in_light_and_dark_themes(theme: str, open_chat: Callable[..., Any], alice: Alice,
                                                        ivschat: Any, room: dict[str, Any]) -> None:
    page = open_chat(more=(TOO_LONG,))
    page.wait_for_function("name => document.body.dataset.jpThemeName === name", arg=theme)
    alice.chat.send_message("the docs: https://docs.aws.amazon.com/ivs/")
    alice.chat.send_message("and more")
    ivschat.send_event(roomIdentifier=room["arn"], eventName="poll_opened", attributes={"question": "tea?"})
    page.locator(".ivs-chat-event").wait_for()
    page.locator(".ivs-chat-error").filter(has_text="too long").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".ivs-chat").screenshot(path=str(ARTIFACTS / f"chat-panel-{theme.lower().replace(' ', '-')}.png"))

    colours = dict(zip(TEXTS, page.evaluate(COLOURS, TEXTS)))
    text, background = colours[".ivs-chat-message .ivs-chat-text"]
    dark = theme == "JupyterLab Dark"
    assert (luminance(background[:3]) < 0.05) == dark and (luminance(over(text, background)) > 0.5) == dark
    # WCAG AA for text of this size: 4.5:1, against whatever each text sits on.
    low = {selector: round(contrast(*pair), 2) for selector, pair in colours.items() if contrast(*pair) < 4.5}
    assert low == {}
