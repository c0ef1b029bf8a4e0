# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / The metrics log
"""The metrics log of a run (`metrics.jsonl`, one JSON object per line) and its plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ropelib.files import atomic_write

METRICS = "metrics.jsonl"


def _reset_metrics(path: Path, keep_lines: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    atomic_write(path, b"".join(lines[:keep_lines]))


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_metrics(out_dir: str | Path) -> list[dict]:
    """The records of `out_dir/metrics.jsonl`. Defined in the chapter *The trainer*."""
    path = Path(out_dir) / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# %% notebooks/92_trainer.md: The trainer / The metrics log
def plot_metrics(records: list[dict], path: str | Path | None = None, title: str = ""):
    """Plot training and validation loss against steps. Defined in the chapter *The trainer*."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    train = [r for r in records if r["kind"] == "train"]
    axes.plot(
        [r["iter"] for r in train], [r["loss"] for r in train], label="train", lw=1
    )
    evals = [r for r in records if r["kind"] == "eval"]
    for key in evals[0]["val_loss"] if evals else []:
        points = [
            (r["iter"], r["val_loss"][key])
            for r in evals
            if r["val_loss"][key] is not None
        ]
        if points:
            axes.plot(
                *zip(*points, strict=True),
                marker="o",
                label=f"validation, context {key}",
            )
    axes.set(xlabel="optimiser step", ylabel="cross-entropy (nats / token)")
    axes.set_title(f"Loss {title}".strip())
    axes.legend()
    figure.tight_layout()
    if path is not None:  # rendered in memory, then written atomically
        buffer = io.BytesIO()
        figure.savefig(buffer, format=Path(path).suffix[1:] or "png", dpi=100)
        atomic_write(path, buffer.getvalue())
    return figure


__all__ = [
    "METRICS",
    "plot_metrics",
    "read_metrics",
]
