"""A learner re-runs cells: every code cell of notebooks 02–04 run twice in a row, in one kernel.

Each run is bounded by a timeout (no cell may hang the kernel), no run may raise, and a cell's second
run must print what its first run printed, once the sanitize file has blanked out what changes on
every run (ids, times, ports): no "refused" where the first run said "connected", no count that
grows. nbval checks each notebook run once, top to bottom; this checks the cells a learner repeats.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbval.plugin import get_sanitize_patterns

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RERUN = ["02-chat-tokens.ipynb", "03-connect-and-chat.ipynb", "04-the-chat-panel.ipynb"]
CELL_TIMEOUT_S = 60
#: Widget model ids are new on every display; the widget's text/plain stays compared.
UNCOMPARED = {"application/vnd.jupyter.widget-view+json"}


def sanitizer() -> Any:
    patterns = get_sanitize_patterns((NOTEBOOKS / "nbval-sanitize.cfg").read_text())

    def sanitize(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    return sanitize


def printed(cell: Any, sanitize: Any) -> list[str]:
    """What a cell showed, as sanitized text per output."""
    shown: list[str] = []
    for output in cell.outputs:
        if output.output_type == "stream":  # one stream may arrive in several pieces: join them, as nbval does
            if shown and shown[-1].startswith(f"{output.name}: "):
                shown[-1] += output.text
            else:
                shown.append(f"{output.name}: {output.text}")
        elif output.output_type in ("execute_result", "display_data"):
            shown += [f"{kind}: {value}" for kind, value in sorted(output.data.items())
                      if kind not in UNCOMPARED]
        else:
            shown.append(f"{output.output_type}: {output.get('ename')} {output.get('evalue')}")
    return [sanitize(text) for text in shown]


def test_every_cell_of_02_to_04_can_run_twice_in_a_row(tmp_path: Path) -> None:
    combined = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    sources: list[str] = []
    for name in RERUN:
        for cell in nbformat.read(NOTEBOOKS / name, as_version=4).cells:
            if cell.cell_type == "code":
                first = nbformat.v4.new_code_cell(cell.source)
                combined.cells += [first, copy.deepcopy(first)]
                sources.append(f"{name}, code cell starting {cell.source.splitlines()[0]!r}")
    # A cell that hangs fails with CellTimeoutError, one that raises with CellExecutionError (naming the cell).
    NotebookClient(combined, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    sanitize = sanitizer()
    differing = []
    for where, (first, second) in zip(sources, zip(combined.cells[::2], combined.cells[1::2])):
        if printed(first, sanitize) != printed(second, sanitize):
            differing.append(f"{where}:\n  first:  {printed(first, sanitize)}\n  second: {printed(second, sanitize)}")
    assert not differing, "a second run printed something else:\n" + "\n".join(differing)
