# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Records
"""Run records: provenance (git commit, hardware), the one record writer, and reading them back."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import time
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
RECORD_KEYS = (
    "experiment",
    "run",
    "label",
    "seed",
    "quick",
    "config",
    "git",
    "hardware",
    "wall_time_s",
    "final",
    "history",
    "finished",
)


def provenance() -> dict[str, Any]:
    """Git commit and hardware of this process. Defined in the chapter *The experiment runner*."""
    return {"git": git_commit(), "hardware": hardware()}


def make_record(
    *,
    experiment: str,
    run: str,
    label: str,
    seed: int,
    quick: bool,
    config: Any,
    final: dict[str, Any],
    history: list[dict],
    wall_time_s: float | None,
    origin: dict[str, Any] | None = None,
    **measured: Any,
) -> dict[str, Any]:
    """One run's record, in the one schema. Defined in the chapter *The experiment runner*."""
    clash = sorted(set(measured) & set(RECORD_KEYS))
    if clash:
        raise ValueError(f"measured values may not reuse the record's keys {clash}")
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    origin = provenance() if origin is None else origin
    return {
        "experiment": experiment,
        "run": run,
        "label": label,
        "seed": seed,
        "quick": bool(quick),
        "config": config,
        "git": origin["git"],
        "hardware": origin["hardware"],
        "wall_time_s": wall_time_s,
        "final": final,
        **measured,
        "history": history,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# %% notebooks/93_experiments.md: The experiment runner / Records
def write_record(path: str | Path, record: dict[str, Any]) -> None:
    """Write a run's record once, atomically. Defined in the chapter *The experiment runner*."""
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise ValueError(
            f"record must have the keys {list(RECORD_KEYS)}; missing {missing}"
        )
    atomic_write_json(path, record, overwrite=False)


def _translate(record: dict[str, Any]) -> dict[str, Any]:
    options = (record.get("config") or {}).get("pe_options") or {}
    if "block_size" in options and "block_dim" not in options:
        options["block_dim"] = options.pop("block_size")
    return record


def load_results(name: str, results_dir: str | Path = "results") -> list[dict]:
    """An experiment's records, sorted by run. Defined in the chapter *The experiment runner*."""
    directory = Path(results_dir)
    directory = directory if directory.name == name else directory / name
    paths = sorted(directory.glob("*.json"))
    return [_translate(json.loads(path.read_text())) for path in paths]


__all__ = [
    "git_commit",
    "hardware",
    "load_results",
    "make_record",
    "provenance",
    "RECORD_KEYS",
    "write_record",
]
