"""Write the `ropelib` package from the notebooks.

Each notebook `notebooks/NN_topic.md` (MyST markdown, read with jupytext) names its module once,
in a cell holding the directive `#| default_exp NAME`. Code cells whose first lines carry
`#| export` are written, in notebook order, to `ropelib/NAME.py`; `#| export OTHER` sends a
cell to `ropelib/OTHER.py` instead, so several notebooks may add to one module (they are then
concatenated in the order of the notebooks' file names). A dotted name writes into a
subpackage: `#| export schemes.rope` writes `ropelib/schemes/rope.py`.

Before each cell the module gets a marker comment naming the notebook, its chapter and the
section the cell sits under (`# %% notebooks/01_rope.md: <chapter> / <section>`), so that a
traceback leads back to the cell. Each module ends with an `__all__` generated from the public
names its cells define at module level; a cell must not write `__all__` itself.

    python tools/export.py           # (re)write ropelib/*.py
    python tools/export.py --check   # write nothing; exit 1 when ropelib/ is stale or missing
    python tools/export.py --format [NOTEBOOK ...]  # first `ruff format` every code cell at
                                                     # the book's 88 columns, export cells with
                                                     # sorted imports (all notebooks by default)

Files in `ropelib/` that start with the generated header but are no longer produced by any
notebook count as stale too, so deleting an export cell cannot leave an orphan module behind.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# generated from {sources} by tools/export.py, do not edit\n"
HEADER_PREFIX = "# generated from "
DIRECTIVE = re.compile(r"^#\|\s*(?P<name>[\w-]+)(?:\s+(?P<arg>\S+))?\s*$")
MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")  # `schemes.rope` -> schemes/rope.py
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)


class ExportError(ValueError):
    """A notebook's directives are malformed (unknown module, export before default_exp, ...)."""


def split_directives(source: str) -> tuple[dict[str, str | None], str]:
    """Split the leading `#| name arg` lines of a cell from its code."""
    directives: dict[str, str | None] = {}
    lines = source.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        match = DIRECTIVE.match(line.strip())
        if not match:
            break
        directives[match["name"]] = match["arg"]
        body_start = i + 1
    return directives, "\n".join(lines[body_start:]).strip("\n")


class Export(typing.NamedTuple):
    """One exported cell: its module, its code and where it comes from."""

    module: str
    code: str
    chapter: str  # the notebook's title
    section: str  # the heading the cell sits under ("" before the first section)


def notebook_exports(path: Path) -> list[Export]:
    """The cells one notebook exports, in cell order, each with its chapter and section."""
    notebook = jupytext.read(path)
    default: str | None = None
    chapter, section = path.stem, ""
    exports: list[Export] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for match in HEADING.finditer(cell.source):
                level, title = len(match[1]), match[2].strip()
                if level == 1:
                    chapter, section = title, ""
                else:
                    section = title
            continue
        if cell.cell_type != "code":
            continue
        directives, body = split_directives(cell.source)
        if "default_exp" in directives:
            default = directives["default_exp"]
            if default is None or not MODULE_NAME.match(default):
                raise ExportError(f"{path.name}: '#| default_exp' needs a module name")
        if "export" in directives:
            module = directives["export"] or default
            if module is None:
                raise ExportError(f"{path.name}: '#| export' cell before any '#| default_exp'")
            if not MODULE_NAME.match(module):
                raise ExportError(f"{path.name}: bad module name {module!r}")
            if body:
                exports.append(Export(module, body, chapter, section))
    return exports


def public_names(code: str, where: str) -> list[str]:
    """The public names a cell defines at module level (functions, classes, assignments)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        message = f"{where}: export cell does not parse: {error.msg} (line {error.lineno})"
        raise ExportError(message) from None
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    if target.id == "__all__":
                        raise ExportError(f"{where}: __all__ is generated; do not write it")
                    names.append(target.id)
    return [name for name in names if not name.startswith("_")]


def marker(source: str, export: Export) -> str:
    """The comment written before each exported cell: notebook, chapter and section."""
    where = f"{source}: {export.chapter}" + (f" / {export.section}" if export.section else "")
    return "\n".join(textwrap.wrap(where, 96, initial_indent="# %% ", subsequent_indent="#    "))


def module_path(package_dir: Path, module: str) -> Path:
    return package_dir.joinpath(*module.split(".")).with_suffix(".py")


def all_block(names: list[str]) -> str:
    unique = sorted(set(names), key=lambda name: (name.lower(), name))
    if not unique:
        return "__all__: list[str] = []\n"
    return "__all__ = [\n" + "".join(f'    "{name}",\n' for name in unique) + "]\n"


def header(sources: list[str]) -> str:
    """The generated-file header naming the source notebooks, wrapped at 100 columns."""
    text = HEADER.format(sources=", ".join(sources)).rstrip("\n")
    lines = textwrap.wrap(text, width=100, subsequent_indent="#   ", break_on_hyphens=False)
    return "\n".join(lines) + "\n"


def render_modules(notebook_dir: Path, package_dir: Path) -> dict[Path, str]:
    """Map every generated file of the package to the text it must hold."""
    cells: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    names: dict[str, list[str]] = {}
    for path in sorted(notebook_dir.glob("*.md")):
        relative = path.relative_to(notebook_dir.parent).as_posix()
        for export in notebook_exports(path):
            where = f"{path.name} ({export.section or export.chapter})"
            names.setdefault(export.module, []).extend(public_names(export.code, where))
            code = marker(relative, export) + "\n" + export.code
            cells.setdefault(export.module, []).append(code)
            if relative not in sources.setdefault(export.module, []):
                sources[export.module].append(relative)
    return {
        module_path(package_dir, module): header(sources[module])
        + "\n"
        + "\n\n\n".join(bodies)
        + "\n\n\n"
        + all_block(names[module])
        for module, bodies in cells.items()
    }


BOOK_WIDTH = 88  # the book's code column at 1280 px; modules are linted at the project's 100
MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes: not Python, left as written
CELL_FENCE = re.compile(r"^(`{3,}|~{3,})\{code-cell\}", re.M)


def _ruff(arguments: list[str], code: str) -> str:
    """`ruff ARGUMENTS -` on `code` at the book's width; raises ExportError if it cannot parse."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--line-length", str(BOOK_WIDTH)]
        + ["--stdin-filename", "cell.py", "-"],
        input=code,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["ruff failed"])[-1]
        raise ExportError(message)
    return done.stdout.strip("\n")


def format_cell(source: str, *, sort_imports: bool) -> str:
    """One code cell formatted at 88 columns, its leading `#|` directive lines kept on top."""
    lines = source.splitlines()
    split = 0
    while split < len(lines) and (
        not lines[split].strip() or DIRECTIVE.match(lines[split].strip())
    ):
        split += 1
    head, body = "\n".join(lines[:split]), "\n".join(lines[split:]).strip("\n")
    if not body:
        return source
    formatted = body
    if sort_imports:
        formatted = _ruff(["check", "--select", "I", "--fix-only", "--exit-zero"], formatted)
    formatted = _ruff(["format"], formatted)
    if formatted == body:
        return source
    return (head.rstrip("\n") + "\n" if head.strip() else "") + formatted


def _cell_starts(text: str) -> list[int]:
    """Offsets just past each `{code-cell}` fence line."""
    return [text.index("\n", match.start()) + 1 for match in CELL_FENCE.finditer(text)]


CELL_OPTIONS = re.compile(r"(?:(?::[^\n]*\n)*|---\n(?:[^\n]*\n)*?---\n)\s*")


def _locate(text: str, source: str, starts: list[int], cursor: int) -> int | None:
    """Where a code cell's source begins: right after its fence and options, past `cursor`."""
    for start in starts:
        if start < cursor:
            continue
        found = text.find(source, start)
        if found < 0:
            return None
        if CELL_OPTIONS.fullmatch(text[start:found]):
            return found
    return None


def format_notebook(path: Path) -> bool:
    """Format every code cell of `path` in place at 88 columns; True if the file changed.

    Export cells also get their imports sorted. Cells with IPython magics or shell escapes
    (`%`, `!` lines) are left as written, and so are other cells that do not parse; an export
    cell that does not parse is an error.
    """
    original = path.read_text(encoding="utf-8")
    notebook = jupytext.read(path)
    starts = _cell_starts(original)
    pieces: list[str] = []
    cursor = 0
    for cell in notebook.cells:
        source = cell.source.strip("\n")
        if cell.cell_type != "code" or not source:
            continue
        at = _locate(original, source, starts, cursor)
        if at is None:
            raise ExportError(f"{path.name}: cannot place a code cell in the file")
        directives, _ = split_directives(source)
        line = original.count("\n", 0, at) + 1
        if any(MAGIC.match(text) for text in source.splitlines()):
            continue
        try:
            formatted = format_cell(source, sort_imports="export" in directives)
        except ExportError as error:
            if "export" in directives:
                raise ExportError(f"{path.name}:{line}: export cell: {error}") from None
            print(f"{path.name}:{line}: left as written: {error}", file=sys.stderr)
            continue
        pieces += [original[cursor:at], formatted]
        cursor = at + len(source)
    text = "".join(pieces) + original[cursor:]
    if text != original:
        path.write_text(text, encoding="utf-8")
    return text != original


def is_generated(path: Path) -> bool:
    """True when `path` starts with the exporter's header."""
    with open(path, encoding="utf-8") as handle:
        return handle.readline().startswith(HEADER_PREFIX)


def stale_files(expected: dict[Path, str], package_dir: Path) -> list[str]:
    """Describe every generated file that is missing, different or orphaned."""
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"missing: {path.relative_to(package_dir).as_posix()}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"stale: {path.relative_to(package_dir).as_posix()}")
    for path in sorted(package_dir.rglob("*.py")):
        if path not in expected and is_generated(path):
            name = path.relative_to(package_dir).as_posix()
            problems.append(f"orphaned (no notebook exports it): {name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when stale")
    parser.add_argument(
        "--format", action="store_true", help="ruff-format code cells at 88 columns first"
    )
    parser.add_argument(
        "only", nargs="*", type=Path, help="with --format: format only these notebooks"
    )
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--package", type=Path, default=ROOT / "ropelib")
    args = parser.parse_args(argv)
    try:
        if args.format and not args.check:
            for path in args.only or sorted(args.notebooks.glob("*.md")):
                if format_notebook(path):
                    print(f"formatted {path}")
        expected = render_modules(args.notebooks, args.package)
    except ExportError as error:
        print(f"export: {error}", file=sys.stderr)
        return 2
    problems = stale_files(expected, args.package)
    if args.check:
        for problem in problems:
            print(f"export --check: {problem}", file=sys.stderr)
        if problems:
            print("export --check: run `python tools/export.py` and commit", file=sys.stderr)
        return 1 if problems else 0
    args.package.mkdir(parents=True, exist_ok=True)
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            init = path.parent / "__init__.py"
            if path.parent != args.package and not init.exists():
                init.write_text(f'"""{path.parent.name}: see the modules of this package."""\n')
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(args.package.parent)}")
    for problem in problems:
        if problem.startswith("orphaned"):
            name = problem.rsplit(" ", 1)[-1]
            (args.package / name).unlink()
            print(f"removed ropelib/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
