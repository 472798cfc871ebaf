"""The tutorial run front to back in ONE kernel, as a learner who never restarts it would.

nbval already runs each notebook in a fresh kernel; this checks that every notebook's last cell
really stops what it started, so the next notebook's first cell starts cleanly.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_all_notebooks_run_one_after_another_in_the_same_kernel(tmp_path: Path) -> None:
    assert len(NOTEBOOKS) >= 7
    combined = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        combined.cells += [nbformat.v4.new_code_cell(cell.source) for cell in notebook.cells
                           if cell.cell_type == "code"]
    # Last, what is left running: no sandbox thread, since every notebook closed its backend.
    combined.cells.append(nbformat.v4.new_code_cell(
        "import threading; print([t.name for t in threading.enumerate() if t.name == 'ivs-sandbox'])"))
    # Raises CellExecutionError (with the failing cell and traceback) if any cell fails.
    NotebookClient(combined, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert combined.cells[-1].outputs[0]["text"] == "[]\n"
