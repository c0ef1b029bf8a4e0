# generated from notebooks/12_results.md by tools/export.py, do not edit

# %% notebooks/12_results.md: Results: every scheme on one table / Reading the records
"""Every stored language-model run on one table: scale, losses, paired differences."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
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
def experiment_rows(
    name: str, results_dir: str | Path = "results", baseline_from: str | None = None
) -> list[dict]:
    """One row per label, with paired Δs. Defined in the chapter *Results*.

    `baseline_from` names another experiment whose RoPE runs are the baseline: one
    whose configurations differ from this one's only in `pe`, so that seed s of both
    saw the same batches.
    """
    records = load_results(name, results_dir)
    others = load_results(baseline_from, results_dir) if baseline_from else []
    protocol = bool(records) and all(r["final"].get("protocol") for r in records)
    protocol = protocol and all(r["final"].get("protocol") for r in others)
    labels = list(dict.fromkeys(r["label"] for r in records))
    if others and "rope" not in labels:
        labels.append("rope")
    losses = {label: {} for label in labels}  # {label: {length: {seed: loss}}}
    for r in records + [r for r in others if r["label"] == "rope"]:
        for length, loss in run_losses(r, protocol).items():
            losses[r["label"]].setdefault(length, {})[r["seed"]] = loss
    rows = []
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        if not runs:  # the other experiment's baseline: not a row of this one
            continue
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


# %% notebooks/12_results.md: Results: every scheme on one table / CPU benchmark reports
def bench_reports(directory: str | Path) -> list[dict]:
    """The `bench` JSON reports in `directory`. Defined in the chapter *Results*."""
    reports = []
    for path in sorted(Path(directory).glob("*.json")):
        report = json.loads(path.read_text())
        missing = {"benchmarks", "device_name", "torch", "threads", "git"} - set(report)
        if missing:
            raise ValueError(f"{path} lacks a bench report's keys {sorted(missing)}")
        reports.append({"path": path.name, **report})
    return reports


def _tables(result: dict) -> dict[str, dict]:
    """A benchmark's ratio tables by name: itself, its sub-tables, compiled ratios."""
    tables = {"": result} if "ratio" in result else {}
    tables |= {n: t for n, t in result.items() if isinstance(t, dict) and "ratio" in t}
    if "compiled_ratio" in result:  # compiled candidates against compiled RoPE
        reference = result["compiled_reference"]
        tables["compiled"] = {"reference": reference, "ratio": result["compiled_ratio"]}
    return tables


def bench_ranges_table(reports: list[dict]) -> str:
    """Each candidate's ratio, min–max over the reports. Defined in *Results*."""
    lines = ["| benchmark | reference | candidate | ratio |", "|---|---|---|---:|"]
    for key, first in reports[0]["benchmarks"].items():
        for sub, table in _tables(first).items():
            runs = [_tables(r["benchmarks"][key])[sub] for r in reports]
            where = f"{key}, {sub}" if sub else key
            for name in table["ratio"]:
                ratios = [run["ratio"][name] for run in runs if name in run["ratio"]]
                low, high = min(ratios), max(ratios)
                span = (
                    f"{low:.2f}x"
                    if f"{low:.2f}" == f"{high:.2f}"
                    else f"{low:.2f}–{high:.2f}x"
                )
                lines.append(f"| {where} | {table['reference']} | {name} | {span} |")
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


# %% notebooks/12_results.md: Results: every scheme on one table / GPU measurements
def _test_figures(report: dict) -> list[str]:
    counts = ", ".join(f"{n} {outcome}" for outcome, n in report["counts"].items())
    lines = [f"tests marked `cuda`: {counts}" + (" (timed out)" * report["timed_out"])]
    for test in report["tests"]:
        if test["outcome"] in ("failed", "error"):
            lines.append(
                f"- {test['outcome']}: `{test['name']}`: {test['message'][:120]}"
            )
    return lines


def _bench_figures(report: dict) -> list[str]:
    lines = []
    for key, result in report["benchmarks"].items():  # what was timed, at which size
        titles = [t["title"] for t in _tables(result).values() if "title" in t]
        lines.append(f"- {key}: {'; '.join(titles)}")
        if "copy_bandwidth_GBps" in result:
            bandwidth = result["copy_bandwidth_GBps"]
            lines.append(f"- {key}: copy bandwidth {bandwidth:,.0f} GB/s")
    return [*lines, "", bench_ranges_table([report])]


def _training_figures(report: dict) -> list[str]:
    lines = ["| dtype | run | steps | tokens/s | loss, first → last |",
             "|---|---|---:|---:|---|"]  # fmt: skip
    for dtype, part in report["runs"].items():
        for name, run in part["runs"].items():
            lines.append(
                f"| {dtype} | {name} | {run['steps']} | {run['tokens_per_s']:,.0f} "
                f"| {run['first_loss']:.3f} → {run['final_loss']:.3f} |"
            )
        shape = ", ".join(f"{k} {v}" for k, v in part["shape"].items())
        lines.append(f"| {dtype} | shape: {shape}; corpus: {part['corpus']} | | | |")
    return lines


def gpu_figures(reports: list[dict]) -> str:
    """What each GPU report measured, as Markdown. Defined in the chapter *Results*."""
    out = []
    for r in reports:
        part = r.get("part", "bench")
        out.append(f"**{r['path']}** ({part}; {r['device_name']}, torch {r['torch']}, "
                   f"{r['date'][:10]})")  # fmt: skip
        out.append("")
        if "error" in r:
            out.append(f"no figures: {r['error']} (exit code {r['exit_code']})")
        elif "counts" in r:
            out.extend(_test_figures(r))
        elif "benchmarks" in r:
            out.extend(_bench_figures(r))
        elif "runs" in r:
            out.extend(_training_figures(r))
        out.append("")
    return "\n".join(out)


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
@dataclass(frozen=True)
class Finding:
    """One sentence with its scale, and the command that makes its records."""

    text: str
    command: str


def _delta(rows: list[dict], experiment: str, label: str, length: str = "1x"):
    (row,) = (r for r in rows if r["experiment"] == experiment and r["label"] == label)
    return row["paired"].get(length)


def _resolved(d: dict | None) -> bool:
    return d is not None and (d["low"] > 0 or d["high"] < 0)


def _scale(rows: list[dict], experiment: str, evaluation: str) -> str:
    mine = [row for row in rows if row["experiment"] == experiment]
    params = _span([row["parameters"] / 1e6 for row in mine], ".2f")
    ratio = _span([row["training_tokens"] / row["parameters"] for row in mine], ".1f")
    context = _span([row["context"] for row in mine], "d")
    seeds = _span([len(row["seeds"]) for row in mine], "d")
    return (
        f"{params}M parameters, {ratio} tokens per parameter, context {context}, "
        f"{seeds} seeds, {evaluation}"
    )


def _claim(
    found: list, waiting: list, text: str, experiment: str, ready, check
) -> None:
    command = f"python -m ropelib experiment {experiment}"
    if not ready:
        waiting.append(Finding(text, command))
        return
    if not check():
        raise AssertionError(f"the stored records no longer support: {text}")
    found.append(Finding(text, command))


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
OLD_EXPERIMENTS = ("pe-basics", "crope", "comrope-text", "hdd", "rove")


def book_findings(
    results_dir: str | Path = "results",
) -> tuple[list[Finding], list[Finding]]:
    """(findings the records support, each checked; findings waiting for runs).

    Defined in the chapter *Results*.
    """
    found: list[Finding] = []
    waiting: list[Finding] = []
    rows = [
        row for name in OLD_EXPERIMENTS for row in experiment_rows(name, results_dir)
    ]
    complete = {name: len({len(r["seeds"]) for r in rows if r["experiment"] == name}) == 1
                and all(len(r["seeds"]) == 3 for r in rows if r["experiment"] == name)
                and any(r["experiment"] == name for r in rows)
                for name in OLD_EXPERIMENTS}  # fmt: skip
    old = "the running evaluation"

    def claim(text, experiment, check, scale=None, ready=None):
        ready = complete.get(experiment, False) if ready is None else ready
        if scale is None:
            scale = _scale(rows, experiment, old) if ready else "not stored yet"
        _claim(found, waiting, f"{text} ({scale})", experiment, ready, check)

    claim("RoPE has a lower loss at its training context than learned positions and than "
          "no positions", "pe-basics",
          lambda: _delta(rows, "pe-basics", "learned")["low"] > 0
          and _delta(rows, "pe-basics", "none")["low"] > 0)  # fmt: skip
    corpora = ("bible", "shakespeare")
    claim("CRoPE is not separated from RoPE on either corpus; learned positions are worse "
          "on both", "crope",
          lambda: not any(_resolved(_delta(rows, "crope", f"crope {c}")) for c in corpora)
          and all(_delta(rows, "crope", f"learned {c}")["low"] > 0 for c in corpora))  # fmt: skip
    claim("No ComRoPE variant (AP or LD, b = 2, 4, 8) is separated from RoPE",
          "comrope-text",
          lambda: not any(_resolved(r["paired"].get("1x")) for r in rows
                          if r["experiment"] == "comrope-text"
                          and r["label"] != "rope"))  # fmt: skip
    claim("HDD-RoPE has a higher loss than RoPE, at b = 2 and at b = 4", "hdd",
          lambda: _delta(rows, "hdd", "hdd b=2")["low"] > 0
          and _delta(rows, "hdd", "hdd b=4")["low"] > 0)  # fmt: skip
    claim("RoVE and RoVE on xPos are not separated from RoPE", "rove",
          lambda: not _resolved(_delta(rows, "rove", "rove"))
          and not _resolved(_delta(rows, "rove", "rove-xpos")))  # fmt: skip
    _protocol_findings(claim, results_dir)
    _variant_findings(claim, results_dir)
    _bible_findings(claim, results_dir)
    _extension_findings(claim, results_dir)

    _diagnostics_findings(claim, results_dir)
    return found, waiting


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
def _diagnostics_findings(claim, results_dir: str | Path) -> None:
    from ropelib.experiments.diagnostics import (
        TASKS,
        accuracy_by_scheme,
        diagnostic_runs,
    )

    records = load_results("diagnostics", results_dir)
    defined = {run for run, *_ in diagnostic_runs(seeds=3)}
    done = {r["run"] for r in records} >= defined
    scale = "0.09M-0.14M parameters, 1000 steps, 3 seeds"

    def accuracy(task, pe, factor=1, key="accuracy"):
        size = TASKS[task].train_sizes[1] * factor
        by_seed = accuracy_by_scheme(records, task, key).get(pe, {}).get(size, {})
        return sum(by_seed.values()) / len(by_seed) if by_seed else float("nan")

    rotary = ("rope", "xpos", "p-rope", "rove", "rove-xpos", "comrope-ap", "comrope-ld",
              "rope-mixed", "liere", "crope", "hdd")  # fmt: skip
    claim("Flip-flop at its training length: every rotary scheme reads the bit at 90% or "
          "better in the mean, no positions, the sinusoidal table and T5's bias under 80%",
          "diagnostics",
          lambda: all(accuracy("flip-flop", pe) >= 0.9 for pe in rotary)
          and all(accuracy("flip-flop", pe) < 0.8 for pe in ("none", "sinusoidal", "t5")),
          scale, done)  # fmt: skip
    claim("RoPE retrieves whole passkeys at its training length (over 70%) and none at "
          "eight times it", "diagnostics",
          lambda: accuracy("passkey", "rope", 1, "sequence_accuracy") > 0.7
          and accuracy("passkey", "rope", 8, "sequence_accuracy") < 0.05,
          scale, done)  # fmt: skip


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
def _stored(name: str, results_dir: str | Path, runs: int) -> list[dict] | None:
    """The records of an experiment when all `runs` of them are stored, else None."""
    records = load_results(name, results_dir)
    return records if len(records) == runs else None


def _protocol_findings(claim, results_dir: str | Path) -> None:
    ready = _stored("pe-basics-128", results_dir, 9) is not None
    rows = experiment_rows("pe-basics-128", results_dir) if ready else []
    scale = _scale(rows, "pe-basics-128", "the protocol") if ready else None
    claim(
        PE_BASICS_128, "pe-basics-128", lambda: _pe_basics_128_holds(rows), scale, ready
    )


def _variant_findings(claim, results_dir: str | Path) -> None:
    from ropelib.experiments.basics import BLOCKS_128, SCHEMES_128, against_rope

    for label in [*SCHEMES_128, *BLOCKS_128]:
        c = against_rope(label, results_dir)
        experiment = "schemes-128-blocks" if label in BLOCKS_128 else "schemes-128"
        text, holds = VARIANTS_128.get(label, (None, None))
        stored = "not stored yet"
        if text is None:  # no finding is stated for it yet
            stored = "runs stored, no finding stated yet" if c else "not stored yet"
            text, c = f"{label} against RoPE under the protocol", None
        scale = stored if c is None else (
            f"{c['parameters'] / 1e6:.2f}M parameters, {c['tokens'] / c['parameters']:.1f} "
            f"tokens per parameter, context 128, 3 seeds paired with RoPE's, the protocol"
        )  # fmt: skip
        claim(text, experiment, lambda c=c, holds=holds: holds(c), scale, c is not None)


CROPE_BIBLE = (
    "Under the protocol on the King James Bible, CRoPE is not separated from RoPE at its "
    "training context, and on the same targets its loss rises far less with more context "
    "(about 0.28 nats below RoPE at 4x, less than the 0.46 on Shakespeare)"
)


def _bible_findings(claim, results_dir: str | Path) -> None:
    from ropelib.experiments.basics import against_rope

    c = against_rope("crope", results_dir, experiment="schemes-128-bible")
    scale = "not stored yet" if c is None else (
        f"{c['parameters'] / 1e6:.2f}M parameters, {c['tokens'] / c['parameters']:.1f} "
        f"tokens per parameter, context 128, 3 seeds paired with RoPE's on the Bible, "
        f"the protocol"
    )  # fmt: skip
    holds = lambda: (  # noqa: E731
        _tied(c["paired"]["1x"]) and _below(c["paired"]["2x"])
        and _below(c["paired"]["4x"]) and 0.23 < -c["paired"]["4x"]["mean"] < 0.33
    )  # fmt: skip
    claim(CROPE_BIBLE, "schemes-128-bible", holds, scale, c is not None)


def _extension_findings(claim, results_dir: str | Path) -> None:
    from ropelib.experiments.context_extension import context_extension_256_summary

    ready = _stored("context-extension-256", results_dir, 3) is not None
    summary = context_extension_256_summary(results_dir) if ready else {}
    scale = ("1.1M parameters trained on 2.5M tokens at context 256, 3 seeds, the "
             "protocol on 65,536 targets")  # fmt: skip
    claim(EXTENSION_256, "context-extension-256",
          lambda: _extension_256_holds(summary), scale, ready)  # fmt: skip


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
PE_BASICS_128 = (
    "Under the protocol, RoPE has a lower loss at its training context than no positions "
    "and than learned positions, and scored on the same targets with two and four times "
    "the context its loss rises: for RoPE, more context does not help past its training context"
)


def _pe_basics_128_holds(rows: list[dict]) -> bool:
    (rope,) = (row for row in rows if row["label"] == "rope")
    mean = {k: sum(v.values()) / len(v) for k, v in rope["losses"].items()}
    return (
        _delta(rows, "pe-basics-128", "none")["low"] > 0
        and _delta(rows, "pe-basics-128", "learned")["low"] > 0
        and mean["1x"] < mean["2x"] < mean["4x"]
    )


def _below(d: dict) -> bool:
    return d["high"] < 0


def _tied(d: dict) -> bool:
    return d["low"] < 0 < d["high"]


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
_ROTARY_128 = {  # label of schemes-128: (the finding, its check on against_rope's result)
    "crope": (
        "Under the protocol, CRoPE is not separated from RoPE at its training context, with "
        "9% fewer parameters, and on the same targets its loss rises far less with more "
        "context (about 0.46 nats below RoPE at 4x)",
        lambda c: (
            0.09 < 1 - c["parameters"] / c["rope_parameters"] < 0.1
            and _tied(c["paired"]["1x"])
            and _below(c["paired"]["2x"])
            and _below(c["paired"]["4x"])
            and 0.4 < -c["paired"]["4x"]["mean"] < 0.5
        ),
    ),
    "xpos": (
        "Under the protocol, xPos is not separated from RoPE at its training context and on "
        "the same targets its loss rises far less with more context (about 0.49 nats below "
        "RoPE at 4x)",
        lambda c: (
            _tied(c["paired"]["1x"])
            and _below(c["paired"]["2x"])
            and _below(c["paired"]["4x"])
            and 0.44 < -c["paired"]["4x"]["mean"] < 0.54
        ),
    ),
    "rove": (
        "Under the protocol, RoVE is not separated from RoPE at its training context, and on "
        "the same targets it degrades less past it (about 0.31 nats below RoPE at 4x; at 2x "
        "lower on every seed but not resolved)",
        lambda c: (
            _tied(c["paired"]["1x"])
            and _tied(c["paired"]["2x"])
            and _below(c["paired"]["4x"])
            and 0.25 < -c["paired"]["4x"]["mean"] < 0.35
        ),
    ),
    "hdd b=2": (
        "Under the protocol, HDD-RoPE (b = 2) is behind RoPE at its training context (about "
        "0.09 nats), but on the same targets it barely degrades past "
        "it: lower at 2x than at 1x on every seed, about 0.69 nats below RoPE at 4x",
        lambda c: (
            c["paired"]["1x"]["low"] > 0
            and all(c["losses"]["2x"][s] < c["losses"]["1x"][s] for s in c["seeds"])
            and _below(c["paired"]["4x"])
            and 0.6 < -c["paired"]["4x"]["mean"] < 0.8
        ),
    ),
    "comrope-ap b=4": (
        "Under the protocol, with its basis not decayed, ComRoPE-AP (b = 4) is not separated "
        "from RoPE at its training context nor, on the same targets, at 2x and 4x (above RoPE "
        "at 2x on every seed): it does not degrade less than RoPE",
        lambda c: (
            all(_tied(d) for d in c["paired"].values())
            and all(c["losses"]["2x"][s] > c["rope"]["2x"][s] for s in c["seeds"])
        ),
    ),
}


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
_BIAS_128 = {  # the logit-bias schemes and p-RoPE of chapter 4, as _ROTARY_128
    "alibi": (
        "Under the protocol, ALiBi is behind RoPE at its training context (about 0.07 nats), "
        "and on the same targets it gains from more context (lower at 2x than at 1x on every "
        "seed), about 0.78 nats below RoPE at 4x",
        lambda c: (
            c["paired"]["1x"]["low"] > 0
            and all(c["losses"]["2x"][s] < c["losses"]["1x"][s] for s in c["seeds"])
            and _below(c["paired"]["4x"])
            and 0.7 < -c["paired"]["4x"]["mean"] < 0.85
        ),
    ),
    "t5": (
        "Under the protocol, T5's bias is behind RoPE at its training context (about 0.055 "
        "nats), and on the same targets its loss rises past it, less than RoPE's (about 0.47 "
        "nats below RoPE at 4x)",
        lambda c: (
            c["paired"]["1x"]["low"] > 0
            and all(
                c["losses"][k][s] > c["losses"]["1x"][s]
                for k in ("2x", "4x")
                for s in c["seeds"]
            )
            and _below(c["paired"]["4x"])
            and 0.4 < -c["paired"]["4x"]["mean"] < 0.55
        ),
    ),
    "p-rope": (
        "Under the protocol, p-RoPE (75% of the pairs rotated) is not separated from RoPE at "
        "its training context, and on the same targets it degrades past it about as RoPE "
        "does (its loss rises by about 0.79 nats at 4x, RoPE's by 0.82)",
        lambda c: (
            _tied(c["paired"]["1x"])
            and _tied(c["paired"]["4x"])
            and 0.7
            < statistics.fmean(
                c["losses"]["4x"][s] - c["losses"]["1x"][s] for s in c["seeds"]
            )
            < 0.9
        ),
    ),
}


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
def _above_at_2x(c: dict, about: float) -> bool:  # on every seed, by about `about`
    above = all(c["losses"]["2x"][s] > c["rope"]["2x"][s] for s in c["seeds"])
    return above and abs(c["paired"]["2x"]["mean"] - about) < 0.015


def _ap_block(b: int, about: float) -> tuple:  # ComRoPE-AP at block size b
    text = (
        f"Under the protocol, ComRoPE-AP (b = {b}) is not separated from RoPE at its "
        "training context nor, on the same targets, at 4x, and is above RoPE at 2x on every "
        f"seed (about {about:.2f} nats, not resolved)"
    )
    return (
        text,
        lambda c: (
            all(_tied(d) for d in c["paired"].values()) and _above_at_2x(c, about)
        ),
    )


_BLOCKS_128 = {  # the block sizes of schemes-128-blocks, as _ROTARY_128
    **{f"comrope-ap b={b}": _ap_block(b, about) for b, about in ((2, 0.09), (8, 0.11))},
    "hdd b=4": (
        "Under the protocol, HDD-RoPE (b = 4) is behind RoPE at its training context (about "
        "0.12 nats), but on the same targets it barely degrades past it: lower at 2x than at "
        "1x on every seed, about 0.68 nats below RoPE at 4x",
        lambda c: (
            c["paired"]["1x"]["low"] > 0
            and 0.1 < c["paired"]["1x"]["mean"] < 0.14
            and all(c["losses"]["2x"][s] < c["losses"]["1x"][s] for s in c["seeds"])
            and _below(c["paired"]["4x"])
            and 0.6 < -c["paired"]["4x"]["mean"] < 0.8
        ),
    ),
    "comrope-ld b=4": (
        "Under the protocol, ComRoPE-LD (b = 4) is not separated from RoPE at its training "
        "context nor, on the same targets, at 4x, and is above RoPE at 2x (about 0.10 nats)",
        lambda c: (
            _tied(c["paired"]["1x"])
            and c["paired"]["2x"]["low"] > 0
            and _above_at_2x(c, 0.10)
            and _tied(c["paired"]["4x"])
        ),
    ),
}
VARIANTS_128 = {**_ROTARY_128, **_BIAS_128, **_BLOCKS_128}


# %% notebooks/12_results.md: Results: every scheme on one table / The book's findings
EXTENSION_256 = (
    "Trained at 256 tokens, RoPE's loss on the same targets rises with the context (about "
    "0.7 nats at 8x); without a fine-tune YaRN has the lowest loss at 8x of five rope types "
    "and PI is worse than no change at 2x and 4x; after a 100-step fine-tune at 4x every "
    "type scores better at 2x and 4x than at 1x"
)


def _extension_256_holds(summary: dict) -> bool:
    def mean(method: str, tune: str, length: str) -> float:
        values = summary[(method, tune)]["loss"][length]
        return sum(values) / len(values)

    types = ("default", "linear", "ntk", "dynamic", "yarn")
    best_8x = min(types, key=lambda m: mean(m, "none", "8x"))
    rise = mean("default", "none", "8x") - mean("default", "none", "1x")
    tuned = [m for (m, tune) in summary if tune != "none"]
    return (
        best_8x == "yarn"
        and 0.5 < rise < 0.9
        and all(
            mean("linear", "none", k) > mean("default", "none", k) for k in ("2x", "4x")
        )
        and all(
            max(mean(m, "4x", k) for k in ("2x", "4x")) < mean(m, "4x", "1x")
            for m in tuned
        )
    )


__all__ = [
    "baseline_label",
    "bench_ranges_table",
    "bench_reports",
    "book_findings",
    "CROPE_BIBLE",
    "diagnostics_summary",
    "experiment_rows",
    "EXTENSION_256",
    "Finding",
    "gpu_figures",
    "gpu_reports",
    "gpu_table",
    "hardware_name",
    "OLD_EXPERIMENTS",
    "PE_BASICS_128",
    "run_losses",
    "scale_table",
    "scheme_table",
    "VARIANTS_128",
]
