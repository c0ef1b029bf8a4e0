"""Let nbval execute the MyST-markdown notebooks under `notebooks/`.

nbval collects `.ipynb` files only. With `--nbval` or `--nbval-lax` this hook also collects
`notebooks/*.md` and the landing page `book/intro.md`, reading them through jupytext; plain
`pytest` collects no notebook at all.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

NOTEBOOKS = Path(__file__).parent / "notebooks"
LANDING_PAGE = Path(__file__).parent / "book" / "intro.md"  # it asserts the findings


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    option = parent.config.option
    if not (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)):
        return None
    if file_path.suffix != ".md" or not (
        file_path.parent == NOTEBOOKS or file_path == LANDING_PAGE
    ):
        return None
    return MarkdownNotebook.from_parent(parent, path=file_path)


try:
    import jupytext
    import nbval.plugin
except ImportError:  # the book/dev extras are not installed: no notebook collection
    pass
else:

    class MarkdownNotebook(nbval.plugin.IPyNbFile):
        """An nbval notebook read from MyST markdown instead of `.ipynb` JSON."""

        def collect(self):
            def read(path, as_version=4):
                return jupytext.read(path)

            # nbval reads the notebook with `nbformat.read` on its first line of `collect`.
            with mock.patch.object(nbval.plugin.nbformat, "read", read):
                items = list(super().collect())
            return items
