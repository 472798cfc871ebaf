"""The live stream, its chat and the seed demo when the browser reaches the Jupyter server and nothing
else (issue 16).

On Binder, JupyterHub, Colab or VS Code remote, ``http://127.0.0.1:<port>`` in the page is the
viewer's own machine. Here Jupyter serves under a hub's base URL (``/user/learner/``) and the page
is routed so that every request to the kernel's machine other than the Jupyter server's origin is
aborted: the sandbox's stream, and the seed demo's WebSocket to its messaging endpoint, can only
travel through the widget's comm.

Two pages, one per way the player and the seed demo find out they must relay:
- JupyterLab under a host name (``jupyter.test``, mapped to loopback by Chromium, as a hub's name
  would be): the page is not on loopback, so both relay at once and never try the sandbox.
- Notebook 7 on ``127.0.0.1``: both try the sandbox directly, the attempts are aborted, and they
  fall back to the relay.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from labdriver import (
    BASE_URL,
    HUB_HOST,
    jupyter_server,
    only_the_server,
    page_errors,
    run_all_cells,
    shut_down_kernels,
    write_notebook,
)

NOTEBOOK = "remote.ipynb"
MESSAGE = "hello through the Jupyter server"
FROM_PAGE = "hello from the page's relayed WebSocket"
FROM_KERNEL = "hello to the page's relayed WebSocket"
TIMEOUT_MS = 90_000
CELLS = [
    "from ivs_widgets import backend as ivs\n"
    "backend = ivs.connect()\n"
    'room = backend.client.create_room(name="remote")',
    'live = backend.live_stream_panel(room["arn"], "viewer", display_name="Viewer")\nlive',
    f"live.chat.send({MESSAGE!r})",
    'from ivs_widgets.widgets import PlayerPanel\nPlayerPanel(live.player.url, engine="native")',
    'demo = backend.seed_demo(room["arn"], "page", username="Ada", display_name="Page")\n'
    'demo.add_class("seed-demo")\ndemo',
    "import ipywidgets as w\n"
    'say = w.Button(description="kernel says")\nsay.add_class("kernel-say")\n'
    f"say.on_click(lambda _: live.chat.send({FROM_KERNEL!r}))\nsay",
]
FRONT_ENDS = {  # front end: (server module, host the page uses, where a notebook opens)
    "jupyterlab": ("jupyterlab", HUB_HOST, "lab/tree/{}?reset"),
    "notebook7": ("notebook", "127.0.0.1", "notebooks/{}"),
}


@pytest.fixture(params=list(FRONT_ENDS))
def remote_notebook(request: pytest.FixtureRequest, browser: Any, page: Any,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(origin, notebook URL) of a front end serving the notebook under BASE_URL; afterwards its kernel
    is shut down, and the sandbox and ffmpeg with it. Takes ``browser`` so a machine without Chromium
    skips before a server starts."""
    module, host, notebook_path = FRONT_ENDS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    write_notebook(root / NOTEBOOK, CELLS)
    with jupyter_server(module, root, tmp_path_factory.mktemp(f"{request.param}-home"),
                        f"--ServerApp.base_url={BASE_URL}", "--ServerApp.allow_remote_access=True") as url:
        origin = url.replace("127.0.0.1", host)
        server = f"{origin}{BASE_URL.rstrip('/')}"
        yield origin, f"{server}/{notebook_path.format(NOTEBOOK)}"
        shut_down_kernels(page, server, NOTEBOOK)


def test_the_sandbox_stream_and_seed_demo_work_through_the_jupyter_server_alone(
        page: Any, remote_notebook: tuple[str, str]) -> None:
    origin, notebook_url = remote_notebook
    problems = page_errors(page)
    aborted = only_the_server(page, origin)
    run_all_cells(page, notebook_url, TIMEOUT_MS)

    page.wait_for_selector(".ivs-chat .ivs-chat-state-connected", timeout=TIMEOUT_MS)
    page.locator(".ivs-chat-text").get_by_text(MESSAGE, exact=True).wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelector('.ivs-player video')?.currentTime > 2", timeout=TIMEOUT_MS)
    assert page.get_attribute(".ivs-player", "data-route") == "relay"
    assert "relayed by the kernel" in page.text_content(".ivs-player-status")
    # The browser's own HLS player cannot be relayed: the second panel says so.
    native = page.locator(".ivs-player").nth(1).locator(".ivs-player-message")
    native.wait_for(state="visible", timeout=30_000)
    assert "only hls.js can play it through the kernel" in native.text_content()

    # The seed demo's page chats both ways over a WebSocket the kernel holds for it.
    demo = page.locator(".seed-demo")
    page.wait_for_function("() => document.querySelector('.seed-demo .ivs-seed-status')?.textContent"
                           ".includes(': open')", timeout=TIMEOUT_MS)
    assert demo.locator(".ivs-seed").get_attribute("data-route") == "relay"
    assert "relayed by the kernel" in demo.locator(".ivs-seed-status").text_content()
    demo.locator(".ivs-seed-input").fill(FROM_PAGE)
    demo.locator(".ivs-seed-input").press("Enter")
    page.locator(".ivs-chat-text").get_by_text(FROM_PAGE, exact=True).wait_for(timeout=30_000)  # the kernel's panel
    page.click(".kernel-say button, button.kernel-say")
    demo.locator(".ivs-seed-text").get_by_text(FROM_KERNEL, exact=True).wait_for(timeout=30_000)

    streams = [url for url in aborted if urlsplit(url).path == "/live.m3u8"]
    sockets = [url for url in aborted if urlsplit(url).scheme == "ws"]
    if urlsplit(origin).hostname == "127.0.0.1":
        assert streams and sockets, "a page on loopback tries the sandbox directly first"
    else:
        assert streams == sockets == [], "a page elsewhere goes to the relay without trying"
    # ... and never fetches a segment, or opens a second WebSocket, itself.
    assert {urlsplit(url).path for url in aborted} <= {"/", "/live.m3u8"}
    assert len(sockets) <= 1
    assert problems == []
