"""The GPT adapters of the position methods: each wraps one method module for `ropelib.model`.

Importing this package registers every scheme, from the one explicit list below (no directory
scan). A new adapter module is added here by name. Every other module of the package is
generated from the notebooks by `tools/export.py`.
"""

import importlib

MODULES: tuple[str, ...] = ("absolute", "rope", "crope", "rove", "comrope", "hdd", "bias")

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
