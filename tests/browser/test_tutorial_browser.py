"""The tutorial as a learner runs it: JupyterLab in Chromium, Run All, and typing into a panel.

Every notebook runs with Run All; after its last cell, every panel must still be on the page in its
final state: each chat panel with its messages and "chat ended" (the ones the clean-up cell's
transcript lists), each player stopped ("No stream", or paused on its last frame), the dashboard
stopped with its last figures, the seed's page with its status. Notebook 04 also runs as a learner
who types two answers into the panel before the cell that waits for an answer.

The notebooks are copied without their stored outputs, so a cell's prompt shows a number only once
this run has executed it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labdriver import run_all_cells

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIAL = sorted(path.name for path in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
TIMEOUT_MS = 180_000

#: The last code cell has run (its prompt shows a number, not "*" or nothing). Cells run in order, and
#: Run All stops at a cell that raises, so this is "every cell ran".
ALL_CELLS_RAN = r"""() => /\[\d+\]/.test([...document.querySelectorAll('.jp-CodeCell')].at(-1)
  ?.querySelector('.jp-InputPrompt')?.textContent ?? '')"""
#: What the page shows of every panel, read in one go.
PANELS = r"""() => ({
  chats: [...document.querySelectorAll('.ivs-chat')].map((chat) => ({
    state: chat.querySelector('.ivs-chat-state')?.textContent,
    texts: [...chat.querySelectorAll('.ivs-chat-text')].map((t) => t.textContent),
  })),
  transcripts: [...document.querySelectorAll('.ivs-chat-transcript tr')].map(
    (row) => [...row.querySelectorAll('td')].map((td) => td.textContent)),
  players: [...document.querySelectorAll('.ivs-player')].map((player) => ({
    state: player.dataset.state,
    status: player.querySelector('.ivs-player-status')?.textContent,
    errorShown: !player.querySelector('.ivs-player-message')?.hidden,
  })),
  dashboards: [...document.querySelectorAll('.ivs-dashboard')].map((d) => d.textContent),
  seedPages: [...document.querySelectorAll('.ivs-seed-status')].map((s) => s.textContent),
  tracebacks: [...document.querySelectorAll('.jp-OutputArea-output')].filter(
    (o) => /Traceback|Error\s+Traceback/.test(o.textContent)).map((o) => o.textContent.slice(0, 300)),
})"""


def copy_without_outputs(name: str, lab_root: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, lab_root / name)


def wait_until_every_cell_ran(page: Any) -> None:
    page.wait_for_function(ALL_CELLS_RAN, timeout=TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached",
                           timeout=TIMEOUT_MS)


@pytest.mark.timeout(2 * TIMEOUT_MS // 1000)  # the page's own waits, not pytest's default, say when it is stuck
@pytest.mark.parametrize("name", TUTORIAL)
def test_run_all_ends_with_every_panel_on_the_page_in_its_final_state(name: str, page: Any, lab_root: Path,
                                                                       jupyterlab: str) -> None:
    copy_without_outputs(name, lab_root)
    run_all_cells(page, f"{jupyterlab}/lab/tree/{name}?reset", TIMEOUT_MS)
    wait_until_every_cell_ran(page)
    # The views get the panels' last state a moment after the last cell: wait for every chat to show it.
    page.wait_for_function("() => [...document.querySelectorAll('.ivs-chat-state')]"
                           ".every((s) => s.textContent === 'chat ended')", timeout=30_000)
    shown = page.evaluate(PANELS)
    assert not shown["tracebacks"], shown["tracebacks"]
    panel_texts = {text for chat in shown["chats"] for text in chat["texts"]}
    for chat in shown["chats"]:
        assert chat["state"] == "chat ended" and chat["texts"], chat
    messages = [cells[2] for cells in shown["transcripts"] if len(cells) == 3 and cells[1] not in ("event", "notice")]
    assert set(messages) <= panel_texts, "every message of a transcript is still shown in a panel"
    if shown["chats"]:
        assert messages, "the clean-up cell printed the transcript"
    for player in shown["players"]:
        assert player["state"] in ("idle", "paused") and not player["errorShown"], player
        assert re.match(r"(No stream|Paused)", player["status"] or ""), player
    for dashboard in shown["dashboards"]:
        assert "Dashboard stopped" in dashboard
    for status in shown["seedPages"]:
        assert status.startswith("WebSocket from this page:")
    expected = {"04-the-chat-panel.ipynb": 1, "05-live-stream-and-chat.ipynb": 1, "09-workshop-presenter.ipynb": 1}
    if name in expected:
        assert len(shown["chats"]) == expected[name]
    if name == "05-live-stream-and-chat.ipynb":
        assert len(shown["players"]) == 2
    if name == "06-the-seed-page-in-the-browser.ipynb":
        assert len(shown["seedPages"]) == 1 and len(shown["chats"]) == 1


def select_cell(page: Any, source_text: str) -> None:
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea-editor", has_text=source_text))
    cell.locator(".jp-InputPrompt").click()


def run_menu(page: Any, item: str) -> None:
    page.keyboard.press("Escape")
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


def test_answers_typed_into_notebook_04_before_its_wait_cell_do_not_break_it(page: Any, lab_root: Path,
                                                                             jupyterlab: str) -> None:
    name = "04-the-chat-panel.ipynb"
    copy_without_outputs(name, lab_root)
    page.goto(f"{jupyterlab}/lab/tree/{name}?reset", timeout=TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached",
                           timeout=TIMEOUT_MS)
    page.set_default_timeout(TIMEOUT_MS)
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()  # "Select Kernel" when the front end asks (see labdriver.run_all_cells)
    select_cell(page, "typed = panel.typed_messages()")
    run_menu(page, "Run All Above Selected Cell")
    page.locator(".ivs-chat-text", has_text="Hi! Can you see me in the panel?").wait_for()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")

    for answer in ("first answer", "second answer"):  # twice: the old wait for "3 messages" timed out here
        page.fill(".ivs-chat-input", answer)
        page.press(".ivs-chat-input", "Enter")
        page.locator(".ivs-chat-text", has_text=answer).wait_for()

    select_cell(page, "typed = panel.typed_messages()")
    run_menu(page, "Run Selected Cell and All Below")
    wait_until_every_cell_ran(page)
    page.wait_for_function("() => document.querySelector('.ivs-chat-state')?.textContent === 'chat ended'",
                           timeout=30_000)
    shown = page.evaluate(PANELS)
    assert not shown["tracebacks"], shown["tracebacks"]
    outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    assert any("You said:    second answer" in text for text in outputs), outputs
    texts = shown["chats"][0]["texts"]
    assert "first answer" in texts and "second answer" in texts
    assert "Got your message (13 characters). See you in notebook 05!" in texts
