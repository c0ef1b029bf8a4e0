"""tools/export.py: notebooks -> ropelib modules, and the drift check `make test` relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import export  # noqa: E402
import jupytext  # noqa: E402

NOTEBOOK = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{{code-cell}} ipython3
#| default_exp {module}
```

```{{code-cell}} ipython3
#| export
def first():
    return 1
```

```{{code-cell}} ipython3
assert first() == 1  # not exported
```

```{{code-cell}} ipython3
#| export
def second():
    return 2
```

```{{code-cell}} ipython3
#| export other
OTHER = True
```
"""


def make_project(tmp_path: Path, module: str = "demo") -> tuple[Path, Path]:
    notebooks, package = tmp_path / "notebooks", tmp_path / "ropelib"
    notebooks.mkdir()
    package.mkdir()
    (notebooks / "01_demo.md").write_text(NOTEBOOK.format(module=module))
    return notebooks, package


def run(notebooks: Path, package: Path, *flags: str) -> int:
    return export.main([*flags, "--notebooks", str(notebooks), "--package", str(package)])


def test_exports_cells_in_order_under_a_header(tmp_path):
    notebooks, package = make_project(tmp_path)
    assert run(notebooks, package) == 0
    text = (package / "demo.py").read_text()
    assert text.startswith(export.HEADER.format(sources="notebooks/01_demo.md"))
    assert text.index("def first") < text.index("def second")
    assert "assert first()" not in text and "#|" not in text
    assert "OTHER = True\n" in (package / "other.py").read_text()
    assert run(notebooks, package, "--check") == 0


def test_markers_name_chapter_and_section_and_all_is_generated(tmp_path):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    text = path.read_text().replace(
        "```{code-cell} ipython3\n#| export\ndef second", "## Later section\n\n"
        "```{code-cell} ipython3\n#| export\ndef second"
    )
    text = text.replace("def second():", "_PRIVATE = 0\nPUBLIC = 1\n\n\ndef second():")
    path.write_text(text)
    assert run(notebooks, package) == 0
    module = (package / "demo.py").read_text()
    first, second = module.index("def first"), module.index("def second")
    marker_1 = module.index("# %% notebooks/01_demo.md: A chapter\n")
    marker_2 = module.index("# %% notebooks/01_demo.md: A chapter / Later section\n")
    assert marker_1 < first < marker_2 < second
    namespace: dict = {}
    exec(compile(module, "demo.py", "exec"), namespace)
    assert namespace["__all__"] == ["first", "PUBLIC", "second"]


def test_dotted_module_writes_a_subpackage(tmp_path):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    path.write_text(path.read_text().replace("#| export other", "#| export schemes.other"))
    assert run(notebooks, package) == 0
    assert "OTHER = True" in (package / "schemes" / "other.py").read_text()
    assert (package / "schemes" / "__init__.py").exists()
    assert run(notebooks, package, "--check") == 0


def test_writing_all_by_hand_is_an_error(tmp_path, capsys):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    path.write_text(path.read_text().replace("OTHER = True", "__all__ = ['OTHER']"))
    assert run(notebooks, package) == 2
    assert "__all__ is generated" in capsys.readouterr().err


def test_check_fails_on_stale_missing_and_orphaned_modules(tmp_path, capsys):
    notebooks, package = make_project(tmp_path)
    assert run(notebooks, package, "--check") == 1  # missing
    assert "missing: demo.py" in capsys.readouterr().err
    run(notebooks, package)
    (package / "demo.py").write_text((package / "demo.py").read_text() + "# edited by hand\n")
    assert run(notebooks, package, "--check") == 1
    assert "stale: demo.py" in capsys.readouterr().err
    run(notebooks, package)
    orphan = export.HEADER.format(sources="notebooks/00_gone.md") + "X = 1\n"
    (package / "old.py").write_text(orphan)
    (package / "handwritten.py").write_text("Y = 2\n")  # not generated: left alone
    assert run(notebooks, package, "--check") == 1
    assert "orphaned" in capsys.readouterr().err
    run(notebooks, package)
    assert not (package / "old.py").exists() and (package / "handwritten.py").exists()
    assert run(notebooks, package, "--check") == 0


def test_export_before_default_exp_is_an_error(tmp_path, capsys):
    notebooks, package = make_project(tmp_path)
    text = (notebooks / "01_demo.md").read_text().replace("#| default_exp demo", "x = 1")
    (notebooks / "01_demo.md").write_text(text)
    assert run(notebooks, package) == 2
    assert "before any '#| default_exp'" in capsys.readouterr().err


def test_format_rewrites_code_cells(tmp_path):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    path.write_text(path.read_text().replace("return 1", "return   (1)"))
    assert run(notebooks, package, "--format") == 0
    assert "return 1" in path.read_text() and "return   (1)" not in path.read_text()
    assert "assert first() == 1  # not exported" in path.read_text()


FORMAT_CELLS = """
```{{code-cell}} ipython3
:tags: [hide-input]

#| export
import sys
import os
def third(): return [{numbers}]
```

```{{code-cell}} ipython3
import sys
import os
values = [{numbers}]
```

```{{code-cell}} ipython3
%timeit   values  =  [1]
```

```{{code-cell}} ipython3
values = [{numbers}]
```

```{{code-cell}} ipython3
def broken(:
```
"""


def test_format_wraps_every_code_cell_at_the_books_88_columns(tmp_path, capsys):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    numbers = ", ".join(f"{i:03d}" for i in range(100, 125))  # one 124-column line
    path.write_text(path.read_text() + FORMAT_CELLS.format(numbers=numbers))
    before = jupytext.read(path)
    assert run(notebooks, package, "--format") == 0
    after = jupytext.read(path)
    cells = [cell.source for cell in after.cells if cell.cell_type == "code"]
    export_cell, plain, magic, repeated, broken = cells[-5:]
    for cell in (export_cell, plain, repeated):
        assert max(map(len, cell.splitlines())) <= 88, cell
        assert "    100,\n" in cell  # the long list is wrapped one item a line, not cut
    # the directive stays on top; an export cell's imports are sorted, other cells' are not
    assert export_cell.startswith("#| export\nimport os\nimport sys\n\n\ndef third():")
    assert plain.startswith("import sys\nimport os\n")
    assert magic == "%timeit   values  =  [1]"  # IPython, not Python: left as written
    assert broken == "def broken(:"  # does not parse: left as written, and said so
    assert "left as written" in capsys.readouterr().err
    # markdown, cell metadata and cell order are untouched
    assert [c.metadata for c in after.cells] == [c.metadata for c in before.cells]
    markdown = [c.source for c in after.cells if c.cell_type == "markdown"]
    assert markdown == [c.source for c in before.cells if c.cell_type == "markdown"]
    assert "def third" in (package / "demo.py").read_text()
    text = path.read_text()
    assert run(notebooks, package, "--format") == 0 and path.read_text() == text  # idempotent


def test_format_rejects_an_export_cell_that_does_not_parse(tmp_path, capsys):
    notebooks, package = make_project(tmp_path)
    path = notebooks / "01_demo.md"
    path.write_text(path.read_text().replace("OTHER = True", "OTHER = (True"))
    assert run(notebooks, package, "--format") == 2
    assert "01_demo.md:" in capsys.readouterr().err


def test_the_repository_is_in_sync():
    """The committed package equals what the committed notebooks export."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "export.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_no_export_cell_is_over_the_books_limit():
    """A chapter's exported cells stay readable: at most book_stats.LIMIT non-blank lines."""
    import book_stats

    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
    assert len(chapters) >= 17
    # the limit counts a cell as it stands in the chapter: its fence and tag lines too
    limit = book_stats.LIMIT - 2
    over = {
        stats.name: stats.largest_export
        for stats in map(book_stats.chapter_stats, chapters)
        if stats.largest_export > limit
    }
    assert not over, f"export cells over {limit} non-blank source lines: {over}"
