"""The seed's browser half in JupyterLab under real Chromium: the page's own WebSocket to the sandbox.

The notebook starts a sandbox, shows ``backend.seed_demo(...)`` and keeps a kernel-side
``BackgroundChatRoom`` in the same room. The page must open ``new WebSocket(endpoint, token)`` itself,
show what the kernel sends (as text, even when it is markup), and what it sends must reach the kernel
with the page's claimed ``username`` beside the name the token vouches for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

NOTEBOOK = "seed_demo.ipynb"
TIMEOUT_MS = 90_000
MARKUP = '<img src=x onerror="window.seedPwned=1">'
CELLS = [
    """\
import html, ipywidgets as w
from ivs_widgets.backend import connect
from ivs_widgets.chat import BackgroundChatRoom

backend = connect()
room = backend.client.create_room(name="seed")
heard = w.HTML()
heard.add_class("kernel-heard")
kernel_side = BackgroundChatRoom(backend.messaging_url,
                                 backend.token_provider(room["arn"], "kernel", ["SEND_MESSAGE"]))
kernel_side.connect()
kernel_side.on("message", lambda m: setattr(heard, "value", html.escape(
    f"{m.attributes.get('username') if m.attributes else None}|{m.sender.attributes.get('displayName')}|{m.content}")))
""",
    """\
demo = backend.seed_demo(room["arn"], "mallory", username="Ada", display_name="Mallory")
demo.add_class("seed-demo")
demo
""",
    """\
say = w.Button(description="kernel says")
say.add_class("kernel-say")
say.on_click(lambda _: kernel_side.send_message(%r))
w.VBox([say, heard])
""" % MARKUP,
]


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def test_the_page_chats_over_its_own_websocket_and_shows_markup_as_text(lab_root: Path, page: Any, jupyterlab: str,
                                                                       run_all: Any) -> None:
    write_notebook(lab_root / NOTEBOOK)
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    run_all(NOTEBOOK)
    page.wait_for_function("() => document.querySelector('.seed-demo .ivs-seed-status')?.textContent"
                           ".includes(': open')", timeout=TIMEOUT_MS)

    page.click(".kernel-say button, button.kernel-say")
    row = page.locator(".seed-demo .ivs-seed-row").last
    row.wait_for(timeout=TIMEOUT_MS)
    assert row.locator(".ivs-seed-text").text_content() == MARKUP  # shown as characters
    assert page.locator(".seed-demo img").count() == 0
    assert page.evaluate("() => window.seedPwned") is None
    jupyter_port = jupyterlab.rsplit(":", 1)[1]
    assert [url for url in opened if not url.startswith(f"ws://127.0.0.1:{jupyter_port}/")], \
        "the page itself opened a WebSocket to the sandbox, besides the kernel's to Jupyter"
    assert page.get_attribute(".seed-demo .ivs-seed", "data-route") == "direct"  # it can reach the sandbox

    page.fill(".seed-demo .ivs-seed-input", "hello from the page")
    page.press(".seed-demo .ivs-seed-input", "Enter")
    page.wait_for_function("() => document.querySelector('.kernel-heard')?.textContent"
                           ".includes('hello from the page')", timeout=TIMEOUT_MS)
    # The page claims "Ada"; the token the kernel minted says "Mallory".
    assert page.text_content(".kernel-heard") == "Ada|Mallory|hello from the page"
    mine = page.locator(".seed-demo .ivs-seed-row").last
    mine.locator(".ivs-seed-text", has_text="hello from the page").wait_for(timeout=TIMEOUT_MS)
    assert mine.locator(".ivs-seed-claimed").text_content() == "Ada"
    assert mine.locator(".ivs-seed-vouched").text_content() == "token: Mallory"
