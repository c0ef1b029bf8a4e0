# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Tables and figures
"""The results of an experiment as a markdown table and as validation-loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ropelib.experiments.records import load_results
from ropelib.experiments.stats import mean_std, paired_difference


def _summarise(values: list[float | None]) -> tuple[float, float] | None:
    present = [
        v for v in values if v is not None
    ]  # None: not measured (a learned table at 4x)
    return mean_std(present) if present else None


def _value(record: dict, column: str) -> float | None:
    # "val_loss 2x": the running evaluation; "protocol 2x": the same targets at each length
    kind, length = column.split(" ")
    if kind == "val_loss":
        return (record["val_loss"] or {}).get(length)
    result = (record["final"].get("protocol") or {}).get(length)
    return result and result["loss"]


def _paired(runs: list[dict], base: list[dict], column: str) -> dict | None:
    # the per-seed paired difference run - baseline, over >= 2 seeds in common
    mine = {r["seed"]: _value(r, column) for r in runs}
    theirs = {r["seed"]: _value(r, column) for r in base}
    seeds = [s for s in mine if s in theirs and None not in (mine[s], theirs[s])]
    if len(seeds) < 2:
        return None
    return paired_difference({s: mine[s] for s in seeds}, {s: theirs[s] for s in seeds})


def _span(values, spec: str) -> str:
    # "3" or "3 to 5": the smallest and largest of the values
    values = sorted(set(values))
    return " to ".join(dict.fromkeys(format(v, spec) for v in (values[0], values[-1])))


def _scale(summary: dict, records: list[dict]) -> str:
    # the scale of the runs, printed above their table
    config = records[0]["config"]
    rows = summary.values()
    return (
        f"Scale: {config['n_layer']} layers, width {config['n_embd']}, context "
        f"{_span((r['context'] for r in rows), ',')} tokens; "
        f"{_span((r['parameters'] for r in rows), ',')} parameters; "
        f"{_span((r['training_tokens'] for r in rows), ',')} training tokens per run "
        f"({_span((r['tokens_per_parameter'] for r in rows), '.2f')} per parameter)."
    )


# %% notebooks/93_experiments.md: The experiment runner / Tables and figures
def results_table(
    name: str, results_dir: str | Path = "results", baseline: str | None = None
) -> tuple[str, dict]:
    """Table and dict of mean ± std over seeds. Defined in the chapter *The experiment runner*."""
    records = load_results(name, results_dir)
    labels = list(dict.fromkeys(r["label"] for r in records))
    if baseline is not None and baseline not in labels:
        raise ValueError(f"baseline must be one of {labels}, got {baseline!r}")
    lengths = list(dict.fromkeys(k for r in records for k in (r["val_loss"] or {})))
    protocol = [k for k in lengths if all(r["final"].get("protocol") for r in records)]
    shown = [f"protocol {k}" for k in protocol] or [f"val_loss {k}" for k in lengths]
    columns = ["train_loss", *(f"val_loss {k}" for k in lengths)]
    columns += [f"protocol {k}" for k in protocol]
    summary: dict[str, dict[str, Any]] = {}
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        final, config = runs[0]["final"], runs[0]["config"]
        row: dict[str, Any] = {"seeds": len(runs), "parameters": final["n_params"]}
        row.update(training_tokens=final["tokens_seen"], context=config["block_size"])
        row["tokens_per_parameter"] = final["tokens_seen"] / final["n_params"]
        row["train_loss"] = _summarise([r["train_loss"] for r in runs])
        for column in columns[1:]:
            row[column] = _summarise([_value(r, column) for r in runs])
        if baseline is not None:
            base = [r for r in records if r["label"] == baseline]
            row[f"paired {shown[0]}"] = _paired(runs, base, shown[0])
        summary[label] = row

    def cell(value: tuple[float, float] | None) -> str:
        return "—" if value is None else f"{value[0]:.3f} ± {value[1]:.3f}"

    def paired_cell(d: dict | None) -> str:
        return (
            "—"
            if d is None
            else f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        )

    heads = [
        "train",
        *(c.replace("val_loss", "val").replace("protocol", "val") for c in shown),
    ]
    heads += [f"Δ {shown[0].split()[1]} vs {baseline}, 95%"] if baseline else []
    lines = [
        _scale(summary, records),
        "",
        "| configuration | seeds | parameters | " + " | ".join(heads) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in heads) + " |",
    ]
    for label, row in summary.items():
        cells = [cell(row[c]) for c in ["train_loss", *shown]]
        if baseline is not None:
            paired = row[f"paired {shown[0]}"]
            cells.append("baseline" if label == baseline else paired_cell(paired))
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


# %% notebooks/93_experiments.md: The experiment runner / Tables and figures
def plot_positions(
    name: str | Sequence[str], results_dir: str | Path = "results",
    lengths=("1x", "2x", "4x"), labels: Sequence[str] | None = None,
    baseline_from: str | None = None,
):  # fmt: skip
    """Per-position protocol loss, mean over seeds. Defined in *The experiment runner*.

    `name` is one experiment or several; `labels` keeps only those labels, in that order;
    `baseline_from` adds that experiment's RoPE runs.
    """
    from matplotlib.figure import Figure

    names = [name] if isinstance(name, str) else list(name)
    name = " + ".join(names)
    records = [r for n in names for r in load_results(n, results_dir)
               if r["final"].get("protocol")]  # fmt: skip
    if labels is not None:
        records = [r for r in records if r["label"] in labels]
        records.sort(key=lambda r: list(labels).index(r["label"]))
    if baseline_from is not None:
        records += [r for r in load_results(baseline_from, results_dir)
                    if r["label"] == "rope" and r["final"].get("protocol")]  # fmt: skip
    if not records:
        raise ValueError(f"no records of {name} in {results_dir} carry the protocol")
    figure = Figure(figsize=(max(4.2 * len(lengths), 7.5), 3.6))
    panels = figure.subplots(1, len(lengths), sharey=True, squeeze=False)[0]
    block = records[0]["config"]["block_size"]
    for axes, length in zip(panels, lengths, strict=True):
        for label in dict.fromkeys(r["label"] for r in records):
            curves = [
                r["final"]["protocol"][length]["positions"]
                for r in records
                if r["label"] == label and r["final"]["protocol"].get(length)
            ]
            if curves:
                mean = [sum(c) / len(curves) for c in zip(*curves, strict=True)]
                axes.plot(
                    range(1, len(mean) + 1), mean, label=f"{label} ({len(curves)})"
                )
        context = int(float(length.rstrip("x")) * block)
        axes.axvspan(context - block + 1, context, color="grey", alpha=0.12)
        axes.set(
            xscale="log", xlabel="position in the window", title=f"{length}: {context}"
        )
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("validation loss (nats / token)")
    panels[0].legend(fontsize=8)  # the first panel has every configuration
    figure.suptitle(f"{name}: loss by position")
    figure.tight_layout()
    figure._repr_png_ = lambda: _png(figure)
    return figure


def _png(figure) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


__all__ = [
    "plot_positions",
    "plot_results",
    "results_table",
]
