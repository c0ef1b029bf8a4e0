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

import torch

from ropelib.data import prepare_dataset
from ropelib.experiments.records import load_results, make_record, write_record
from ropelib.experiments.rove import rove_experiment  # noqa: F401 (registers "rove")
from ropelib.experiments.runner import (
    experiment_runs,
    register_custom_experiment,
    run_experiment,
    run_lock,
)
from ropelib.experiments.stats import mean_std, paired_difference
from ropelib.scaling import scaling_parameters
from ropelib.schemes.context import extend_context, model_inversion_probabilities
from ropelib.train.checkpoint import load_model
from ropelib.train.config import PRESETS, TrainConfig
from ropelib.train.evaluate import evaluate_protocol
from ropelib.train.loop import evaluate_lengths, train
from ropelib.train.metrics import read_metrics

FACTORS = (2, 4, 8)
INVERSION_LENGTHS = (64, 256, 1024, 4096, 16384)
METHODS = ("default", "linear", "ntk", "yarn-paper")  # rope types, ropelib.scaling
# records written before the rope-type registry name the methods "none", "pi", "ntk" and
# "yarn"; their "yarn" is the paper's ramp, today's "yarn-paper"
STORED_METHODS = {"none": "default", "pi": "linear", "ntk": "ntk", "yarn": "yarn-paper"}


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending trained models
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


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
LONG_FACTORS = (1, 2, 4, 8)  # multiples of the training context scored
LONG_METHODS = ("default", "linear", "ntk", "dynamic", "yarn")  # without a fine-tune
FINE_TUNE_FACTOR = 4
FINE_TUNED = ("default", "linear", "ntk", "yarn")  # fine-tuned at FINE_TUNE_FACTOR
KEY_LENGTH, KEY_TRIALS = 8, 64


def long_base_config(quick: bool = False) -> TrainConfig:
    """The base model of context-extension-256: RoPE at 256 tokens."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(block_size=16, max_iters=4, eval_interval=2, checkpoint_interval=2)
        base.update(eval_tokens=512, eval_lengths=(1,))
    else:
        base.update(block_size=256, max_iters=800, eval_interval=200)
        base.update(checkpoint_interval=200, eval_tokens=16_384, eval_lengths=(1,))
    return TrainConfig(**{**base, "pe": "rope"})


def _scaling(method: str, factor: float, context: int) -> dict:
    if method == "default":
        return {}
    options = {"rope_type": method, "factor": float(factor)}
    if "original_max_position_embeddings" in scaling_parameters(method):
        options["original_max_position_embeddings"] = context
    return options


def fine_tune_config(
    base: TrainConfig, method: str, quick: bool = False
) -> TrainConfig:
    """A short fine-tune of the base model at FINE_TUNE_FACTOR times its context."""
    s = FINE_TUNE_FACTOR
    return dataclasses.replace(
        base, block_size=base.block_size * s, batch_size=max(1, base.batch_size // s),
        max_iters=4 if quick else 100, warmup_iters=0 if quick else 10, lr=3e-4,
        min_lr=3e-5, eval_interval=2 if quick else 50, checkpoint_interval=2 if quick
        else 50, rope_scaling=_scaling(method, s, base.block_size),
    )  # fmt: skip


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
@torch.no_grad()
def key_retrieval(
    model, tokens, context: int, trials: int = KEY_TRIALS, seed: int = 0
) -> float:
    """Share of a repeated random key's tokens predicted at `context` tokens.

    A key of KEY_LENGTH random tokens is written within the first quarter of a window of
    `tokens` and again at its end; the score counts the greedy predictions of the second
    copy's tokens 1.. (its first token follows filler and cannot be known).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + context)
    vocab = model.config.vocab_size
    starts = torch.randint(0, len(tokens) - context, (trials,), generator=generator)
    depth = torch.randint(0, max(1, context // 4), (trials,), generator=generator)
    keys = torch.randint(0, vocab, (trials, KEY_LENGTH), generator=generator)
    windows = torch.stack([
        torch.as_tensor(tokens[s : s + context].astype("int64")) for s in starts.tolist()
    ])  # fmt: skip
    rows = torch.arange(trials)[:, None]
    windows[rows, depth[:, None] + torch.arange(KEY_LENGTH)] = keys
    windows[:, -KEY_LENGTH:] = keys
    was_training = model.training
    model.eval()
    correct = 0
    for chunk in range(0, trials, 8):
        x = windows[chunk : chunk + 8]
        logits, _ = model(x[:, :-1])
        guess = logits[:, -(KEY_LENGTH - 1) :].argmax(-1)
        correct += int((guess == x[:, -(KEY_LENGTH - 1) :]).sum())
    model.train(was_training)
    return correct / (trials * (KEY_LENGTH - 1))


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
def _protocol(model, val, context: int, factors, quick: bool) -> dict[str, dict]:
    targets = 2_048 if quick else 65_536
    scores = evaluate_protocol(
        model, val, context, factors, targets, batch_size=8, longest=max(LONG_FACTORS)
    )
    return {
        k: {"loss": v["loss"], "positions": v["positions"]} for k, v in scores.items()
    }


def _measure_base(model, val, context: int, seed: int, quick: bool) -> dict:
    loss, keys = {}, {}
    for method in LONG_METHODS:
        for factor in LONG_FACTORS:
            if method != "default" and factor == 1:
                continue  # every type at factor 1 is RoPE itself
            options = _scaling(method, factor, context)
            options.pop("rope_type", None)
            extend_context(model, method, seq_len=factor * context, **options)
            scores = _protocol(model, val, context, (factor,), quick)
            loss.setdefault(method, {}).update(scores)
            keys.setdefault(method, {})[f"{factor}x"] = key_retrieval(
                model, val, factor * context, 8 if quick else KEY_TRIALS, seed
            )
    extend_context(model, "default")
    return {"loss": loss, "key_retrieval": keys}


def _measure_tuned(model, val, context: int, seed: int, quick: bool) -> dict:
    loss = _protocol(model, val, context, LONG_FACTORS, quick)
    keys = {
        f"{factor}x": key_retrieval(model, val, factor * context,
                                    8 if quick else KEY_TRIALS, seed)
        for factor in LONG_FACTORS
    }  # fmt: skip
    return {"loss": loss, "key_retrieval": keys}


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
def run_context_extension_256(
    quick: bool = False,
    seeds: int = 3,
    results_dir: str | Path = "results/context-extension-256",
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
) -> list[dict]:
    """RoPE trained at 256 tokens, extended with and without a short fine-tune.

    One record per seed; a seed is claimed with `run_lock`, and its base run and
    fine-tunes are trainer runs that resume where they stopped.
    """
    results_dir, runs = Path(results_dir), Path(runs_dir) / "context-extension-256"
    results_dir.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        run, path = f"rope-seed{seed}", results_dir / f"rope-seed{seed}.json"
        with run_lock(runs / f"{run}.lock") as mine:
            if not mine or path.exists():
                why = "done already" if mine else "taken by another worker"
                print(f"context-extension-256/{run}: {why}")
                continue
            write_record(path, _extend_one_seed(run, seed, quick, runs, data_dir))
    return load_results("context-extension-256", results_dir)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
def _run(config: TrainConfig, out_dir: Path, data_dir) -> dict:
    config = dataclasses.replace(config, out_dir=str(out_dir), resume=True)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))
    return train(config)  # returns at once when the run's checkpoint is complete


def _extend_one_seed(run: str, seed: int, quick: bool, runs: Path, data_dir) -> dict:
    start = time.perf_counter()
    base_dir = runs / run / "base"
    print(f"context-extension-256/{run}: training at the base context")
    final = _run(
        dataclasses.replace(long_base_config(quick), seed=seed), base_dir, data_dir
    )
    model, config = load_model(base_dir)
    data = prepare_dataset(
        config.corpus, config.tokenizer, config.vocab_size, config.data_dir,
        config.val_fraction,
    )  # fmt: skip
    context = config.block_size
    print(f"context-extension-256/{run}: extending without a fine-tune")
    measured = _measure_base(model, data.val, context, seed, quick)
    tuned, tunes = {}, {}
    for method in FINE_TUNED:
        print(f"context-extension-256/{run}: fine-tuning with {method}")
        tune_dir = runs / run / f"tune-{method}"
        tune = dataclasses.replace(
            fine_tune_config(config, method, quick), init_from=str(base_dir),
            out_dir=str(tune_dir),
        )  # fmt: skip
        tune_final = _run(tune, tune_dir, data_dir)
        tuned_model, _ = load_model(tune_dir)
        tuned[method] = _measure_tuned(tuned_model, data.val, context, seed, quick)
        tunes[method] = {
            "config": dataclasses.asdict(tune),
            "final": {k: v for k, v in tune_final.items() if k != "protocol"},
            "history": read_metrics(tune_dir),
        }
    return make_record(
        experiment="context-extension-256", run=run, label="rope", seed=seed,
        quick=quick, config=config, final=final, history=read_metrics(base_dir),
        wall_time_s=time.perf_counter() - start, fine_tuned=tuned, fine_tunes=tunes,
        eval_targets=2_048 if quick else 65_536, **measured,
    )  # fmt: skip


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extension where it can show: 256 tokens, and a short fine-tune
def _rows_256(record: dict) -> dict[tuple[str, str], dict]:
    rows = {(m, "none"): {"loss": v, "keys": record["key_retrieval"][m]}
            for m, v in record["loss"].items()}  # fmt: skip
    for method, scores in record["fine_tuned"].items():
        rows[(method, f"{FINE_TUNE_FACTOR}x")] = {
            "loss": scores["loss"],
            "keys": scores["key_retrieval"],
        }
    return rows


def context_extension_256_summary(results_dir: str | Path) -> dict:
    """{(method, fine-tune): {"loss": {k: [per seed]}, "keys": ..., "seeds": [...]}}."""
    summary: dict = {}
    for record in load_results("context-extension-256", results_dir):
        trained = record["loss"]["default"]["1x"]["loss"]
        for key, row in _rows_256(record).items():
            entry = summary.setdefault(key, {"loss": {}, "keys": {}, "seeds": []})
            entry["seeds"].append(record["seed"])
            for length, score in row["loss"].items():
                entry["loss"].setdefault(length, []).append(score["loss"])
            if key[0] != "default" and key[1] == "none":  # factor 1 is RoPE itself
                entry["loss"].setdefault("1x", []).append(trained)
                found = record["key_retrieval"]["default"]["1x"]
                entry["keys"].setdefault("1x", []).append(found)
            for length, share in row["keys"].items():
                entry["keys"].setdefault(length, []).append(share)
    return summary


def context_extension_256_table(results_dir: str | Path) -> str:
    """Markdown: loss by length and key retrieval per rope type, paired at 8x."""
    summary = context_extension_256_summary(results_dir)
    if not summary:
        return f"no results in {results_dir}"
    lengths = [f"{f}x" for f in LONG_FACTORS]
    head = ["rope type", "tuned", *lengths, "keys 1x/8x", "8x - default, 95%", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    reference = summary[("default", "none")]
    for (method, tune), entry in summary.items():
        cells = [method, "—" if tune == "none" else tune]
        cells += [f"{mean_std(entry['loss'][n])[0]:.3f}" for n in lengths]
        keys = (mean_std(entry["keys"][n])[0] for n in ("1x", "8x"))
        cells.append("/".join(f"{k:.2f}" for k in keys))
        if (method, tune) == ("default", "none") or len(entry["seeds"]) < 2:
            cells.append("—")  # the baseline itself, or one seed: no interval
        else:
            mine = dict(zip(entry["seeds"], entry["loss"]["8x"], strict=True))
            base = dict(zip(reference["seeds"], reference["loss"]["8x"], strict=True))
            d = paired_difference(mine, base)
            cells.append(f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")
        cells.append(str(len(entry["seeds"])))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


register_custom_experiment(
    "context-extension-256", run_context_extension_256, context_extension_256_table,
    seeds=3,
)  # fmt: skip


__all__ = [
    "context_extension_256_summary",
    "context_extension_256_table",
    "context_extension_summary",
    "context_extension_table",
    "FACTORS",
    "fine_tune_config",
    "FINE_TUNE_FACTOR",
    "FINE_TUNED",
    "INVERSION_LENGTHS",
    "key_retrieval",
    "long_base_config",
    "LONG_FACTORS",
    "LONG_METHODS",
    "measure_extensions",
    "METHODS",
    "record_losses",
    "run_context_extension",
    "run_context_extension_256",
    "STORED_METHODS",
]
