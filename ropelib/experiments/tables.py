# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Tables and figures
"""The results of an experiment as a markdown table and as validation-loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ropelib.experiments.records import load_results
from ropelib.experiments.stats import mean_std


def _summarise(values: list[float | None]) -> tuple[float, float] | None:
    present = [
        v for v in values if v is not None
    ]  # None: not measured (a learned table at 4x)
    return mean_std(present) if present else None


def results_table(name: str, results_dir: str | Path = "results") -> tuple[str, dict]:
    """Table and dict of mean ± std over seeds. Defined in the chapter *The experiment runner*."""
    records = load_results(name, results_dir)
    labels = list(dict.fromkeys(r["label"] for r in records))
    lengths = list(dict.fromkeys(k for r in records for k in (r["val_loss"] or {})))
    columns = ["train_loss", *(f"val_loss {k}" for k in lengths), "tokens_per_s"]
    summary: dict[str, dict[str, Any]] = {}
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        row: dict[str, Any] = {
            "seeds": len(runs),
            "parameters": runs[0]["final"]["n_params"],
        }
        row["train_loss"] = _summarise([r["train_loss"] for r in runs])
        for k in lengths:
            row[f"val_loss {k}"] = _summarise(
                [r["val_loss"].get(k) for r in runs if r["val_loss"]]
            )
        row["tokens_per_s"] = _summarise([r["final"]["tokens_per_s"] for r in runs])
        summary[label] = row

    def cell(value: tuple[float, float] | None, digits: int) -> str:
        return (
            "—" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
        )

    lines = [
        "| configuration | seeds | parameters | " + " | ".join(columns) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for label, row in summary.items():
        cells = [cell(row[c], 0 if c == "tokens_per_s" else 3) for c in columns]
        lines.append(
            f"| {label} | {row['seeds']} | {row['parameters']:,} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines), summary


# %% notebooks/93_experiments.md: The experiment runner / Tables and figures
def plot_results(name: str, results_dir: str | Path = "results", length: str = "1x"):
    """Validation loss curves, mean over seeds. Defined in the chapter *The experiment runner*."""
    from matplotlib.figure import Figure

    records = load_results(name, results_dir)
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for label in dict.fromkeys(r["label"] for r in records):
        curves: dict[int, list[float]] = {}
        for record in (r for r in records if r["label"] == label):
            for entry in record["history"]:
                if (
                    entry["kind"] == "eval"
                    and entry["val_loss"].get(length) is not None
                ):
                    curves.setdefault(entry["iter"], []).append(
                        entry["val_loss"][length]
                    )
        if curves:
            steps = sorted(curves)
            means = [sum(curves[s]) / len(curves[s]) for s in steps]
            axes.plot(
                steps,
                means,
                marker="o",
                label=f"{label} (mean of {len(curves[steps[-1]])})",
            )
    axes.set(
        xlabel="optimiser step",
        ylabel=f"validation loss at {length} context (nats / token)",
    )
    axes.set_title(f"Experiment {name}")
    axes.legend()
    figure.tight_layout()

    def png() -> bytes:
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg

        buffer = io.BytesIO()
        FigureCanvasAgg(figure).print_png(buffer)
        return buffer.getvalue()

    figure._repr_png_ = png
    return figure


__all__ = [
    "plot_results",
    "results_table",
]
