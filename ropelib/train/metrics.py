# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / The metrics log
"""The metrics log of a run (`metrics.jsonl`, one JSON object per line) and its plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ropelib.data.tokenizers import import_optional
from ropelib.files import atomic_write
from ropelib.train.config import TrainConfig, preset_of

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


def run_title(config: TrainConfig) -> str:
    """A run's scheme, preset, size and corpus in a line. Defined in *The trainer*."""
    preset, changed = preset_of(config)
    named = "no preset" if preset is None else f"preset {preset}"
    if preset is not None and changed:
        shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
        named += f" ({shown} changed)"
    size = f"{config.n_layer} layers x {config.n_embd}"
    return f"pe={config.pe}, {named}, {size}, {Path(config.corpus).name}"


# %% notebooks/92_trainer.md: The trainer / The metrics log
_STYLES = [  # (colour, marker, line style, marker size): each drawn over the one before
    ("tab:orange", "o", "-", 10),
    ("tab:green", "s", "--", 7),
    ("tab:red", "^", "-.", 5),
    ("tab:purple", "D", ":", 4),
    ("tab:brown", "x", (0, (5, 1)), 4),
]


def plot_metrics(records: list[dict], path: str | Path | None = None, title: str = ""):
    """Plot training and validation loss against steps. Defined in the chapter *The trainer*."""
    figure = import_optional("matplotlib.figure", "the loss plot").Figure(
        figsize=(7, 4)
    )
    ticker = import_optional("matplotlib.ticker", "the loss plot")
    axes = figure.subplots()
    train = [r for r in records if r["kind"] == "train"]
    steps, losses = [r["iter"] for r in train], [r["loss"] for r in train]
    axes.plot(steps, losses, label="train", lw=1, color="tab:blue", zorder=1)
    evals = [r for r in records if r["kind"] == "eval"]
    keys = list(evals[0]["val_loss"]) if evals else []
    # the shortest context first: the largest markers, under the longer ones
    for i, key in enumerate(keys):
        points = [
            (r["iter"], r["val_loss"][key])
            for r in evals
            if r["val_loss"][key] is not None
        ]
        if points:
            colour, marker, line, size = _STYLES[i % len(_STYLES)]
            axes.plot(*zip(*points, strict=True), color=colour, marker=marker, ls=line,
                      ms=size, mfc=colour if i == 0 else "none", zorder=2 + i,
                      label=f"validation, context {key}")  # fmt: skip
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.set(xlabel="optimiser step", ylabel="cross-entropy (nats / token)")
    axes.set_title(f"Loss {title}".strip(), fontsize=10)
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
    "run_title",
]
