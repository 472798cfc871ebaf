"""The committed notebooks as a reader meets them: without a kernel, on GitHub or in an HTML export.

No saved widget state (it made notebook 08 mostly JSON and goes stale at once), notebooks of a size
one can read, the tutorial's structure (what you'll learn first, one H1, exercises with solution
cells that nbval runs, a recap, links that lead somewhere), and the panels' conversations kept as
text in the outputs, so an HTML export shows them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
#: The tutorial itself; the Voila join page is a page for attendees, not a lesson.
TUTORIAL = [path for path in ALL if re.match(r"\d\d-", path.name) and "join-page" not in path.name]
MAX_LINES = 1500
#: The last lesson: it links back to the start instead of to a next one.
LAST = 12


def visible_text(markup: str) -> str:
    """What a browser shows of some HTML, as text with its whitespace collapsed."""
    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    parser = Text()
    parser.feed(markup)
    return " ".join(" ".join(parser.parts).split())


def markdown(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"]


def test_the_tutorial_is_there() -> None:
    assert [path.name[:2] for path in TUTORIAL] == [f"{n:02}" for n in range(1, LAST + 1)]


@pytest.mark.parametrize("path", ALL, ids=lambda path: path.name)
def test_no_saved_widget_state_and_a_readable_size(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, "strip metadata.widgets (saved widget state) before committing"
    assert len(path.read_text().splitlines()) < MAX_LINES


@pytest.mark.parametrize("path", TUTORIAL, ids=lambda path: path.name)
def test_each_lesson_has_goals_one_title_practice_a_recap_and_links(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    texts = markdown(path)
    assert "## What you'll learn" in notebook.cells[0].source, "the first cell says what the learner will learn"
    prose = [re.sub(r"```.*?```", "", text, flags=re.DOTALL) for text in texts]  # not the comments in code blocks
    titles = [line for text in prose for line in text.splitlines() if re.match(r"# \S", line)]
    assert len(titles) == 1, f"one H1 per notebook, found {titles}"
    assert any("## What you learned" in text for text in texts), "a recap"
    solutions = [i for i, cell in enumerate(notebook.cells) if "solution" in cell.metadata.get("tags", [])]
    assert solutions, "at least one exercise with a solution cell"
    for i in solutions:
        assert notebook.cells[i].cell_type == "code"  # nbval runs it like any other cell
        exercise = next(cell for cell in reversed(notebook.cells[:i]) if cell.cell_type == "markdown")
        assert re.search(r"Exercise|\*\*\d\.\*\*", exercise.source), "a solution follows its exercise"
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    # Where chat runs; a workshop notebook first says it is sandbox-only (with IVS_BACKEND=aws it stops there).
    assert "connect()" in first_code.source or "require_sandbox(" in first_code.source
    number = int(path.name[:2])
    head, tail = notebook.cells[0].source, texts[-1]
    if number > 1:
        assert "**Previous:**" in head
    assert ("**Next:**" in head and "**Next:**" in tail) or number == LAST
    assert "Back to the start" in tail or number != LAST


@pytest.mark.parametrize("path", ALL, ids=lambda path: path.name)
def test_links_between_notebooks_lead_to_notebooks_that_exist(path: Path) -> None:
    for text in markdown(path):
        for target in re.findall(r"\]\(([^)#]+\.ipynb)", text):
            assert (NOTEBOOKS / target).exists(), f"{path.name} links to {target}, which does not exist"


@pytest.mark.parametrize("name", ["04-the-chat-panel.ipynb", "05-live-stream-and-chat.ipynb"])
def test_an_html_export_shows_the_stored_transcript(name: str) -> None:
    from nbconvert import HTMLExporter

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    stored = [output.data["text/html"] for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "ivs-chat-transcript" in output.get("data", {}).get("text/html", "")]
    assert len(stored) == 1, "the clean-up cell shows the panel's transcript"
    exported, _ = HTMLExporter().from_notebook_node(notebook)
    transcript = visible_text(stored[0])
    assert transcript.startswith("Chat ") and transcript.count("chat ended") == 1
    assert transcript in visible_text(exported)
