# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending trained models
"""The context-extension experiment: PI, NTK-aware scaling and YaRN on the rove models.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

from ropelib.data import prepare_dataset
from ropelib.experiments.records import load_results, make_record, write_record
from ropelib.experiments.rove import rove_experiment  # noqa: F401 (registers "rove")
from ropelib.experiments.runner import (
    experiment_runs,
    register_custom_experiment,
    run_experiment,
    run_lock,
)
from ropelib.schemes.context import extend_context, model_inversion_probabilities
from ropelib.train.checkpoint import load_model
from ropelib.train.loop import evaluate_lengths, train

FACTORS = (2, 4, 8)
INVERSION_LENGTHS = (64, 256, 1024, 4096, 16384)
METHODS = ("default", "linear", "ntk", "yarn-paper")  # rope types, ropelib.scaling
# records written before the rope-type registry name the methods "none", "pi", "ntk" and
# "yarn"; their "yarn" is the paper's ramp, today's "yarn-paper"
STORED_METHODS = {"none": "default", "pi": "linear", "ntk": "ntk", "yarn": "yarn-paper"}


def record_losses(record: dict) -> dict[str, dict[str, float]]:
    """{method: {length: loss}} of a record, old method names translated."""
    losses = record["loss"]
    if "none" not in losses:  # written with today's rope-type names
        return losses
    return {STORED_METHODS.get(name, name): value for name, value in losses.items()}


def measure_extensions(model, config, tokens, quick: bool = False) -> dict:
    """Loss at 1x and at each factor per method, and the first layer's inversion."""
    batches = 2 if quick else 20

    def evaluate(factor: int) -> dict:
        block = config.block_size
        return evaluate_lengths(model, tokens, block, (factor,), 32, batches)

    loss = {"trained": evaluate(1)}
    for method in METHODS:
        for factor in FACTORS:
            options = {} if method == "default" else {"factor": factor}
            extend_context(model, method, **options)
            loss.setdefault(method, {}).update(evaluate(factor))
    extend_context(model, "default")
    samples = 2000 if quick else 20000
    inversion = {
        str(n): model_inversion_probabilities(model, tokens, n, samples)
        for n in INVERSION_LENGTHS
    }
    return {
        "eval_tokens_per_length": batches * 32 * config.block_size,
        "loss": loss,
        "inversion": inversion,
        "inversion_samples": samples,
    }


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending trained models
def _trained_model(run: str, config, runs_dir: Path, data_dir) -> tuple | None:
    """(model, config, final training metrics) of a rove run, trained if missing.

    None when another worker holds the run (it is training it right now).
    """
    out_dir = str(runs_dir / "rove" / run)
    config = dataclasses.replace(config, out_dir=out_dir, resume=True)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))
    with run_lock(runs_dir / "rove" / f"{run}.lock") as mine:
        if not mine:
            return None
        final = train(config)  # returns at once when the run's checkpoint is complete
    model, _ = load_model(config.out_dir)
    return model, config, final


def run_context_extension(
    quick: bool = False,
    seeds: int = 3,
    results_dir: str | Path = "results/context-extension",
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
) -> list[dict]:
    """Validation loss of the rove experiment's models past their context, per method.

    The rove runs are trained and recorded first where missing, with
    `run_experiment("rove")`; then each run is claimed with `run_lock` and skipped
    when done or taken.
    """
    results_dir, runs_dir = Path(results_dir), Path(runs_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    run_experiment("rove", quick, seeds, results_dir.parent, runs_dir, data_dir)
    for run, label, config in experiment_runs("rove", quick, seeds):
        path = results_dir / f"{run}.json"
        with run_lock(runs_dir / "context-extension" / f"{run}.lock") as mine:
            trained = None
            if mine and not path.exists():
                start = time.perf_counter()
                trained = _trained_model(run, config, runs_dir, data_dir)
            if trained is None:
                why = "done already" if path.exists() else "taken by another worker"
                print(f"context-extension/{run}: {why}")
                continue
            print(f"context-extension/{run}: evaluating")
            model, config, final = trained
            data = prepare_dataset(
                config.corpus, config.tokenizer, config.vocab_size, config.data_dir,
                config.val_fraction,
            )  # fmt: skip
            measured = measure_extensions(model, config, data.val, quick)
            record = make_record(
                experiment="context-extension", run=run, label=label, seed=config.seed,
                quick=quick, config=config, final=final,  # the model's training
                history=[],  # evaluation only: this run takes no training step
                wall_time_s=time.perf_counter() - start, **measured,
            )  # fmt: skip
            write_record(path, record)
    return load_results("context-extension", results_dir)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending trained models
def context_extension_summary(results_dir: str | Path) -> dict[str, dict[str, dict]]:
    """{label: {method: {length: (mean, std, seeds)}}} over the stored runs."""
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for record in load_results("context-extension", results_dir):
        for method, losses in record_losses(record).items():
            for length, value in losses.items():
                entry = values.setdefault(record["label"], {}).setdefault(method, {})
                entry.setdefault(length, []).append(value)
    summary: dict[str, dict[str, dict]] = {}
    for label, methods in values.items():
        for method, lengths in methods.items():
            for length, xs in lengths.items():
                mean = sum(xs) / len(xs)
                std = math.sqrt(sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1))
                cell = (mean, std, len(xs))
                summary.setdefault(label, {}).setdefault(method, {})[length] = cell
    return summary


def context_extension_table(results_dir: str | Path) -> str:
    """Markdown table: loss at 1x and, per method, at 2x, 4x, 8x (mean ± std)."""
    summary = context_extension_summary(results_dir)
    if not summary:
        return f"no results in {results_dir}"
    lengths = [f"{f}x" for f in FACTORS]
    lines = [
        "| scheme | method | 1x | " + " | ".join(lengths) + " | seeds |",
        "|---|---|---|" + "---|" * len(lengths) + "---|",
    ]
    for label, methods in summary.items():
        trained = methods["trained"]["1x"]
        for method in METHODS:
            cells = [
                f"{methods[method][n][0]:.3f} ± {methods[method][n][1]:.3f}"
                for n in lengths
            ]
            first = (
                f"{trained[0]:.3f} ± {trained[1]:.3f}" if method == "default" else ""
            )
            row = f"| {label} | {method} | {first} | " + " | ".join(cells)
            lines.append(row + f" | {trained[2]} |")
    return "\n".join(lines)


register_custom_experiment(
    "context-extension", run_context_extension, context_extension_table, seeds=3
)


__all__ = [
    "context_extension_summary",
    "context_extension_table",
    "FACTORS",
    "INVERSION_LENGTHS",
    "measure_extensions",
    "METHODS",
    "record_losses",
    "run_context_extension",
    "STORED_METHODS",
]
