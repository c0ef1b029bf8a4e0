# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Files that are complete or absent
"""Files that are complete or absent: atomic writes for the data cache, checkpoints and records."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(
    path: str | os.PathLike, data: bytes | bytearray | memoryview | str
) -> None:
    """Write `data` to `path` atomically. Defined in the chapter *The experiment runner*."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(
            fd, 0o644
        )  # mkstemp's 0o600 would hide a shared cache from other users
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(
    path: str | os.PathLike, obj: Any, indent: int | None = 1
) -> None:
    """Write `obj` as JSON to `path` atomically. Defined in the chapter *The experiment runner*."""
    atomic_write(path, json.dumps(obj, indent=indent) + "\n")


__all__ = [
    "atomic_write",
    "atomic_write_json",
]
