# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Records
"""Run records: provenance (git commit, hardware), the one record writer, and reading them back."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from ropelib.files import atomic_write_json


def hardware() -> dict[str, Any]:
    """CPU/GPU model, threads and versions. Defined in the chapter *The experiment runner*."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


# %% notebooks/93_experiments.md: The experiment runner / Records
def git_commit() -> dict[str, Any]:
    """The commit, and whether ropelib/ differs. Defined in the chapter *The experiment runner*."""
    where = Path(__file__).resolve().parent.parent  # the package, ropelib/

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True
            )
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git(
        "status", "--porcelain", "--untracked-files=no", "--", "."
    )  # ropelib/ only
    return {"commit": commit, "dirty": None if status is None else bool(status)}


# %% notebooks/93_experiments.md: The experiment runner / Records
def write_record(path: str | Path, record: dict[str, Any]) -> None:
    """Write a run's record once, atomically. Defined in the chapter *The experiment runner*."""
    atomic_write_json(path, record)


def load_results(name: str, results_dir: str | Path = "results") -> list[dict]:
    """An experiment's records, sorted by run. Defined in the chapter *The experiment runner*."""
    directory = Path(results_dir)
    directory = directory if directory.name == name else directory / name
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


__all__ = [
    "git_commit",
    "hardware",
    "load_results",
    "write_record",
]
