# generated from notebooks/12_results.md by tools/export.py, do not edit

# %% notebooks/12_results.md: Results: every scheme on one table / Reading the records
"""Every stored language-model run on one table: scale, losses, paired differences."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ropelib.experiments.records import load_results
from ropelib.experiments.stats import mean_std, paired_difference


def baseline_label(label: str, labels: list[str]) -> str | None:
    """The RoPE label of the same experiment. Defined in the chapter *Results*."""
    rest = label.split(" ", 1)[1] if " " in label else ""
    for candidate in (f"rope {rest}".strip(), "rope"):
        if candidate in labels:
            return candidate
    return None


def run_losses(record: dict, protocol: bool) -> dict[str, float]:
    """{length: loss} of one run. Defined in the chapter *Results*."""
    if protocol:
        found = record["final"]["protocol"]
        return {k: v["loss"] for k, v in found.items() if v is not None}
    return {k: v for k, v in (record.get("val_loss") or {}).items() if v is not None}


# %% notebooks/12_results.md: Results: every scheme on one table / Reading the records
def experiment_rows(name: str, results_dir: str | Path = "results") -> list[dict]:
    """One row per label, with paired Δs. Defined in the chapter *Results*."""
    records = load_results(name, results_dir)
    protocol = bool(records) and all(r["final"].get("protocol") for r in records)
    labels = list(dict.fromkeys(r["label"] for r in records))
    losses = {label: {} for label in labels}  # {label: {length: {seed: loss}}}
    for r in records:
        for length, loss in run_losses(r, protocol).items():
            losses[r["label"]].setdefault(length, {})[r["seed"]] = loss
    rows = []
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        final, base = runs[0]["final"], baseline_label(label, labels)
        paired = {}
        for length, mine in losses[label].items():
            theirs = losses[base].get(length, {}) if base else {}
            seeds = sorted(set(mine) & set(theirs))
            if label != base and len(seeds) >= 2:
                pair = [{s: d[s] for s in seeds} for d in (mine, theirs)]
                paired[length] = paired_difference(*pair)
        rows.append(
            dict(
                experiment=name, label=label, baseline=base, protocol=protocol,
                seeds=sorted(r["seed"] for r in runs),
                parameters=final["n_params"], training_tokens=final["tokens_seen"],
                context=runs[0]["config"]["block_size"],
                losses=losses[label], paired=paired,
                wall_time_s=[r["wall_time_s"] for r in runs],
                hardware=sorted({hardware_name(r["hardware"]) for r in runs}),
            )
        )  # fmt: skip
    return rows


def hardware_name(hardware: dict) -> str:
    """ "GPU" or "CPU, n threads" of a record. Defined in the chapter *Results*."""
    if hardware.get("gpu"):
        return str(hardware["gpu"])
    threads = hardware["torch_threads"]
    return f"{hardware['cpu']}, {threads} torch thread{'s' if threads != 1 else ''}"


# %% notebooks/12_results.md: Results: every scheme on one table / The scale of the stored runs
def _span(values, spec: str) -> str:
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}–{high}"


def scale_table(rows: list[dict]) -> str:
    """Each experiment's scale, in markdown. Defined in the chapter *Results*."""
    lines = [
        "| experiment | parameters | tokens | tokens/param. | context | seeds | run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in dict.fromkeys(row["experiment"] for row in rows):
        mine = [row for row in rows if row["experiment"] == name]
        params = [row["parameters"] / 1e6 for row in mine]
        tokens = [row["training_tokens"] / 1e6 for row in mine]
        ratio = [row["training_tokens"] / row["parameters"] for row in mine]
        seeds = {len(row["seeds"]) for row in mine}
        walls = [w for row in mine for w in row["wall_time_s"] if w is not None]
        wall = f"{statistics.median(walls) / 60:.1f} min" if walls else "—"
        lines.append(
            f"| {name} | {_span(params, '.2f')}M | {_span(tokens, '.2f')}M | "
            f"{_span(ratio, '.2f')} | {_span([r['context'] for r in mine], 'd')} | "
            f"{_span(seeds, 'd')} | {wall} |"
        )
    return "\n".join(lines)


# %% notebooks/12_results.md: Results: every scheme on one table / Every scheme on one table
def _loss(by_seed: dict | None, sd: bool = True) -> str:
    if not by_seed:
        return "—"
    mean, std = mean_std(list(by_seed.values()))
    return f"{mean:.2f}±{std:.2f}" if sd else f"{mean:.2f}"


def scheme_table(rows: list[dict], length: str = "1x") -> str:
    """Every scheme's loss and Δ, in markdown. Defined in the chapter *Results*."""
    longer = sorted({k for row in rows for k in row["losses"]} - {length}, key=_factor)
    lines = [
        f"| scheme | experiment | params | {length} | Δ vs RoPE, 95% | "
        + " | ".join(longer) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(longer),
    ]  # fmt: skip
    for row in rows:
        scheme, _, corpus = row["label"].partition(" ")
        if corpus and not corpus.startswith("b="):  # a corpus: with the experiment
            where = f"{row['experiment']}, {corpus}"
        else:
            scheme, where = row["label"], row["experiment"]
        d = row["paired"].get(length)
        delta = "—" if d is None else f"{d['mean']:+.3f}±{d['high'] - d['mean']:.3f}"
        if row["label"] == row["baseline"]:
            delta = "baseline"
        cells = [_loss(row["losses"].get(k), sd=False) for k in longer]
        lines.append(
            f"| {scheme} | {where} | {row['parameters'] / 1e6:.2f}M | "
            f"{_loss(row['losses'].get(length))} | {delta} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def _factor(length: str) -> float:
    return float(length.rstrip("x"))


# %% notebooks/12_results.md: Results: every scheme on one table / Diagnostics
def diagnostics_summary(records: list[dict], tasks: dict) -> str:
    """Accuracy at 1x and 8x per scheme and task. Defined in the chapter *Results*."""
    from ropelib.experiments.diagnostics import accuracy_by_scheme

    found = {name: accuracy_by_scheme(records, name) for name in tasks}
    schemes = sorted({pe for by_scheme in found.values() for pe in by_scheme})
    heads = [f"{name} 1×/8×" for name in tasks]
    lines = ["| scheme | seeds | " + " | ".join(heads) + " |",
             "|---|---:|" + "---:|" * len(heads)]  # fmt: skip
    for pe in schemes:
        cells, seeds = [], []
        for name, task in tasks.items():
            by_size, pair = found[name].get(pe, {}), []
            for factor in (1, 8):
                by_seed = by_size.get(task.train_sizes[1] * factor, {})
                seeds.append(len(by_seed))
                mean = 100 * statistics.fmean(by_seed.values()) if by_seed else None
                pair.append("—" if mean is None else f"{mean:.0f}")
            cells.append("/".join(pair))
        lines.append(f"| {pe} | {_span(seeds, 'd')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# %% notebooks/12_results.md: Results: every scheme on one table / GPU measurements
def gpu_reports(directory: str | Path) -> list[dict]:
    """The GPU check's JSON files. Defined in the chapter *Results*."""
    reports = []
    for path in sorted(Path(directory).glob("**/*.json")):
        report = json.loads(path.read_text())
        missing = {"device", "device_name", "torch", "date"} - set(report)
        if missing:
            raise ValueError(f"{path} lacks the GPU check's keys {sorted(missing)}")
        reports.append({"path": str(path.relative_to(directory)), **report})
    return reports


def gpu_table(reports: list[dict]) -> str:
    """Device, torch and date of each report. Defined in the chapter *Results*."""
    lines = ["| file | part | device | torch | date |", "|---|---|---|---|---|"]
    for r in reports:
        part = r.get("part", "bench")
        lines.append(
            f"| {r['path']} | {part} | {r['device_name']} | {r['torch']} "
            f"| {r['date']} |"
        )
    return "\n".join(lines)


__all__ = [
    "baseline_label",
    "diagnostics_summary",
    "experiment_rows",
    "gpu_reports",
    "gpu_table",
    "hardware_name",
    "run_losses",
    "scale_table",
    "scheme_table",
]
