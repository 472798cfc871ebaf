"""LiveStreamPanel in Jupyter Notebook 7 under real Chromium: the chat and the player work outside JupyterLab.

Notebook 7 is built from JupyterLab's parts but is its own application (its own URLs, shell and
menus), so it gets its own server here. The notebook starts the sandbox in its kernel, as a learner's
notebook does, and sends a chat message from Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labdriver import jupyter_server, page_errors, run_all_cells, shut_down_kernels, write_notebook

NOTEBOOK = "live-in-notebook7.ipynb"
MESSAGE = "hello from notebook 7"
TIMEOUT_MS = 90_000
CELLS = [
    "from ivs_widgets import backend as ivs\n"
    "backend = ivs.connect()\n"
    'room = backend.client.create_room(name="notebook7")',
    'live = backend.live_stream_panel(room["arn"], "viewer", display_name="Viewer")\nlive',
    f"live.chat.send({MESSAGE!r})",
]


@pytest.fixture(scope="module")
def notebook7(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, root folder) of a Notebook 7 server on a free loopback port, with no token.

    Takes ``browser`` so that a machine without Chromium skips before a server starts.
    """
    root = tmp_path_factory.mktemp("notebook7")
    with jupyter_server("notebook", root, tmp_path_factory.mktemp("notebook7-home")) as url:
        yield url, root


@pytest.fixture
def live_notebook(page: Any, notebook7: tuple[str, Path]) -> Iterator[str]:
    """Write the notebook; afterwards shut its kernel down, and the sandbox and ffmpeg with it."""
    url, root = notebook7
    write_notebook(root / NOTEBOOK, CELLS)
    yield url
    shut_down_kernels(page, url, NOTEBOOK)


def box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).bounding_box()


def test_live_stream_panel_works_in_notebook_7(page: Any, live_notebook: str) -> None:
    problems = page_errors(page)
    run_all_cells(page, f"{live_notebook}/notebooks/{NOTEBOOK}", TIMEOUT_MS)

    page.wait_for_selector(".ivs-chat .ivs-chat-state-connected", timeout=TIMEOUT_MS)
    page.locator(".ivs-chat-text").get_by_text(MESSAGE, exact=True).wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelector('.ivs-player video')?.currentTime > 0", timeout=TIMEOUT_MS)
    start = page.eval_on_selector(".ivs-player video", "v => v.currentTime")
    page.wait_for_function("t => document.querySelector('.ivs-player video').currentTime > t + 1", arg=start,
                           timeout=30_000)

    # Side by side in a wide window, inside the cell's output; stacked when the window is narrow.
    output = box(page, ".jp-OutputArea-output:has(.ivs-chat)")
    player, chat = box(page, ".ivs-player"), box(page, ".ivs-chat")
    assert player["x"] + player["width"] <= chat["x"] and abs(player["y"] - chat["y"]) < 1
    assert chat["x"] + chat["width"] <= output["x"] + output["width"] + 1
    page.set_viewport_size({"width": 520, "height": 900})
    page.wait_for_function("() => document.querySelector('.ivs-chat').getBoundingClientRect().top >= "
                           "document.querySelector('.ivs-player').getBoundingClientRect().bottom")
    output, chat = box(page, ".jp-OutputArea-output:has(.ivs-chat)"), box(page, ".ivs-chat")
    assert chat["x"] + chat["width"] <= output["x"] + output["width"] + 1

    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert problems == []
