"""One ES module per widget, from the view's file and the page-side modules it shares with others.

anywidget gives each widget one module and the page cannot import a sibling file by path (the view
is loaded from a blob), so ``import { … } from "./name.js";`` lines are replaced by that file's text,
each file once. The rule a widget shares (which route a URL takes) thus lives in one file.
"""

from __future__ import annotations

import re
from pathlib import Path

LOCAL_IMPORT = re.compile(r'^import \{[^}]*\} from "\./([\w-]+\.js)";\n', re.M)


def bundle(entry: Path) -> str:
    """``entry``'s text with its local imports inlined (recursively, each file once)."""
    included: set[Path] = set()

    def inline(path: Path) -> str:
        def replace(match: re.Match[str]) -> str:
            dependency = path.parent / match.group(1)
            if dependency in included:
                return ""
            included.add(dependency)
            return inline(dependency) + "\n"

        return LOCAL_IMPORT.sub(replace, path.read_text())

    return inline(entry)
