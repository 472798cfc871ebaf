"""Notebook 04 run as a learner runs it: in JupyterLab, Run All, in Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: Record every chat row the page ever shows: the notebook's last cell closes the panel, so the
#: rows would be gone by the time the test looks.
RECORD_ROWS = """
window.__chatTexts = [];
window.__chatPanels = 0;
new MutationObserver(() => {
  window.__chatPanels = Math.max(window.__chatPanels, document.querySelectorAll('.ivs-chat').length);
  for (const node of document.querySelectorAll('.ivs-chat-text')) {
    if (!window.__chatTexts.includes(node.textContent)) window.__chatTexts.push(node.textContent);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_notebook_04_renders_the_panel_and_a_message_arrives(page: Any, lab_root: Path, run_all: Any) -> None:
    shutil.copy(NOTEBOOKS / "04-the-chat-panel.ipynb", lab_root / "04-the-chat-panel.ipynb")
    page.add_init_script(RECORD_ROWS)
    run_all("04-the-chat-panel.ipynb")
    page.wait_for_function("() => window.__chatPanels >= 1", timeout=90_000)
    page.wait_for_function("() => window.__chatTexts.includes('Hi! Can you see me in the panel?')", timeout=60_000)
    # Run All reaches the end: the last code cell (clean up) has run without an error.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-CodeCell')].at(-1)?.querySelector('.jp-InputPrompt')"
        "?.textContent.match(/\\[\\d+\\]/)", timeout=60_000)
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert "Yes! Hello from the panel." in page.evaluate("window.__chatTexts")
