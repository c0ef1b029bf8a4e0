# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / Checkpoints that are complete or absent
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
    # A sibling temporary file made by mkstemp (O_EXCL: it never follows a symlink planted at
    # its name), flushed to disk, then renamed over `path`: a reader sees the old file or the
    # complete new one, never a prefix of it. The temporary file is removed on any failure.
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
