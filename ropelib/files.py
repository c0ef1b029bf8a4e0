# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Files that are complete or absent
"""Files that are complete or absent, locks that die with their holder, faults in one line."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write(
    path: str | os.PathLike,
    data: bytes | bytearray | memoryview | str,
    *,
    overwrite: bool = True,
) -> None:
    """Write `data` to `path` atomically. Defined in the chapter *The experiment runner*."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not overwrite and os.path.lexists(path):  # fail early; the link below decides
        raise FileExistsError(f"{path} exists already and is written only once")
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
        if overwrite:
            os.replace(temporary, path)
        else:  # a hard link fails if `path` exists, even if it appeared a moment ago
            os.link(temporary, path, follow_symlinks=False)
    finally:
        Path(temporary).unlink(
            missing_ok=True
        )  # gone after os.replace; removed otherwise


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, overwrite: bool = True
) -> None:
    """Write `obj` as indented JSON, atomically. Defined in the chapter *The experiment runner*."""
    atomic_write(path, json.dumps(obj, indent=1) + "\n", overwrite=overwrite)


def new_file_path(path: str | os.PathLike) -> Path:
    """`path` for a file that does not exist yet, its directory made. Chapter *The experiment
    runner*. FileExistsError if it exists; NotADirectoryError if it cannot be made."""
    path = Path(path)
    if os.path.lexists(path):
        raise FileExistsError(f"{path} exists already: name another file, or move it")
    try:  # a file where a directory should be, no permission
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NotADirectoryError(f"cannot write {path}: {error}") from None
    return path


# %% notebooks/93_experiments.md: The experiment runner / Faults reported in one line
class RunError(Exception):
    """A run stopped by a fault; `exit_code` is its status. Defined in *The experiment runner*."""

    exit_code = 1


class StorageError(RunError):
    """A file could not be written or read. Defined in the chapter *The experiment runner*."""

    exit_code = 4


def os_reason(error: OSError) -> str:
    """`error` in a few words. Defined in the chapter *The experiment runner*."""
    name = errno.errorcode.get(error.errno or 0, "")
    return f"{error.strerror or error}{f' ({name})' if name else ''}"


def prepare_directory(path: str | os.PathLike) -> None:
    """Create `path` and a file in it; OSError if not. Defined in *The experiment runner*."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix=".probe-")
    try:
        os.write(fd, b"\0" * 4096)  # a full file system refuses the first block
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(probe)


# %% notebooks/93_experiments.md: The experiment runner / One owner per run
@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[bool]:
    """Yield True if this process holds `path`. Defined in the chapter *The experiment runner*."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another open file holds it: a live process
            yield False
            return
        os.ftruncate(fd, 0)  # for people: which process holds it (never read back)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)  # releases the lock; the file stays, others may have it open


__all__ = [
    "atomic_write",
    "atomic_write_json",
    "exclusive_lock",
    "new_file_path",
    "os_reason",
    "prepare_directory",
    "RunError",
    "StorageError",
]
