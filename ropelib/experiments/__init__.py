"""The book's experiments: the runner, run records, statistics, tables, and one module of
experiments per chapter.

Importing this package registers every experiment, from the one explicit list below (no
directory scan). Every other module of the package is generated from the notebooks by
`tools/export.py`.
"""

import importlib

MODULES: tuple[str, ...] = (
    "basics",
    "crope",
    "comrope_text",
    "hdd",
    "vision",
    "rove",
    "context_extension",
    "diagnostics",
)

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
