"""How much of each chapter is code: the measure behind "at most half of a chapter is code".

For every chapter `notebooks/*.md` (read with jupytext) it prints

- `visible`: non-blank source lines of the code cells a reader sees, i.e. code cells not tagged
  `remove-cell`, `remove-input` or `hide-input` (a hidden cell renders collapsed or not at all);
- `all`: non-blank source lines of every cell, markdown and code (the YAML header not counted);
- `code %`: visible / all;
- `exports` and `largest`: the number of `#| export` cells and the non-blank lines of the
  largest one (the book's limit is 60);

and, with `--html` (default `_build/html` when it exists), for each built page the fraction of
its rendered lines that are visible `pre` blocks (code and printed outputs): a `pre` counts its
non-blank lines, any other block of text (paragraph, list item, heading, table cell, caption,
displayed math) counts its characters wrapped at the book's 88 columns. Code inside a collapsed
(`hide-input`) cell is not counted.

    python tools/book_stats.py                  # chapters, and _build/html when it exists
    python tools/book_stats.py notebooks/05_crope.md --html=
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input"}
EXPORT = re.compile(r"^#\|\s*export(\s|$)")
COLUMNS = 88  # the book's code width at 1280 px
LIMIT = 60  # the largest export cell a chapter may have, in non-blank lines


class ChapterStats(typing.NamedTuple):
    name: str
    visible_code: int
    all_lines: int
    exports: int
    largest_export: int

    @property
    def code_fraction(self) -> float:
        return self.visible_code / self.all_lines if self.all_lines else 0.0


def non_blank(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip())


def chapter_stats(path: Path) -> ChapterStats:
    """Count one notebook's lines as the module docstring describes."""
    import jupytext

    notebook = jupytext.read(path)
    visible = total = exports = largest = 0
    for cell in notebook.cells:
        lines = non_blank(cell.source)
        total += lines
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if not tags & HIDDEN_TAGS:
            visible += lines
        directives = _directives(cell)
        if any(EXPORT.match(line.strip()) for line in directives):
            exports += 1
            largest = max(largest, lines - len(directives))
    return ChapterStats(path.stem, visible, total, exports, largest)


def _directives(cell) -> list[str]:
    """The leading `#|` lines of a code cell."""
    lines = []
    for line in cell.source.splitlines():
        if not line.strip():
            continue
        if not line.strip().startswith("#|"):
            break
        lines.append(line)
    return lines


def page_code_fraction(path: Path) -> tuple[int, int]:
    """(visible `pre` lines, all rendered lines) of one built HTML page, estimated as above."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    article = soup.find("article") or soup.body or soup
    for hidden in article.select(".tag_hide-input .cell_input, .tag_remove-input .cell_input"):
        hidden.decompose()
    code = 0
    for pre in article.find_all("pre"):
        code += non_blank(pre.get_text())
        pre.decompose()
    prose = 0
    for block in article.find_all(["p", "li", "h1", "h2", "h3", "h4", "dt", "dd", "td", "th"]):
        if block.find(["p", "li", "td", "th"]):  # counted through its inner blocks
            continue
        text = " ".join(block.get_text().split())
        if text:
            prose += math.ceil(len(text) / COLUMNS)
    for block in article.select("div.math, .caption"):
        text = " ".join(block.get_text().split())
        prose += max(1, math.ceil(len(text) / COLUMNS)) if text else 0
    return code, code + prose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.md")
    parser.add_argument(
        "--html", default=None, help="built book to measure (default: _build/html if it exists)"
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.md"))
    print(f"{'chapter':<22} {'visible':>7} {'all':>6} {'code %':>6} {'exports':>7} {'largest':>7}")
    for path in paths:
        stats = chapter_stats(path)
        flag = "  > 60" if stats.largest_export > LIMIT else ""
        print(
            f"{stats.name:<22} {stats.visible_code:>7} {stats.all_lines:>6} "
            f"{stats.code_fraction:>6.0%} {stats.exports:>7} {stats.largest_export:>7}{flag}"
        )
    html = Path(args.html) if args.html else ROOT / "_build" / "html"
    if args.html == "" or not html.is_dir():
        return 0
    print(f"\nrendered pages in {html}: visible code lines / all lines (prose at {COLUMNS} cols)")
    for path in paths:
        page = html / "notebooks" / f"{path.stem}.html"
        if not page.exists():
            print(f"{path.stem:<22} (not built)")
            continue
        code, total = page_code_fraction(page)
        share = code / total if total else 0.0
        print(f"{path.stem:<22} {code:>7} {total:>6} {share:>6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
