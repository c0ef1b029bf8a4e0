# generated from notebooks/90_cli.md by tools/export.py, do not edit

# %% notebooks/90_cli.md: The command line
"""The command line: `python -m ropelib COMMAND ...`. Built in notebooks/90_cli.md."""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """Bad input from the command line: reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage; one line is enough
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m ropelib`."""
    parser = _Parser(prog="python -m ropelib", description="ropelib: rotary position embeddings")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bench = commands.add_parser("bench", help="run a benchmark and print ratios")
    bench.add_argument("name", help="benchmark name, e.g. rope")
    bench.add_argument("--quick", action="store_true", help="a small size that runs in seconds")
    commands.add_parser(
        "train",
        help="train one model",
        usage="python -m ropelib train [--preset=NAME] [--key=value ...]",
        description="Train a GPT. Every field of ropelib.train.TrainConfig is a --key=value "
        "option (e.g. --pe=rope --max_iters=200 --resume); presets: cpu-tiny, cpu-small, "
        "crope-paper, tinystories-33m, gpt2-124m.",
    )
    experiment = commands.add_parser("experiment", help="run a registered experiment")
    experiment.add_argument("name", help="experiment name, e.g. pe-basics")
    experiment.add_argument("--quick", action="store_true", help="tiny runs, written to runs/")
    experiment.add_argument("--seeds", type=int, default=None, help="number of seeds")
    return parser


def run_bench(name: str, quick: bool) -> None:
    from ropelib.bench import BENCHMARKS

    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; choose from {', '.join(sorted(BENCHMARKS))}")
    BENCHMARKS[name](quick=quick)


def run_train(overrides: list[str]) -> None:
    from ropelib.train import config_from_args, train

    config = config_from_args(overrides)  # ValueError: reported as one line
    metrics = train(config)
    if metrics["rank"] != 0:  # under torchrun, process 0 reports
        return
    losses = ", ".join(
        f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in (metrics["val_loss"] or {}).items()
    )
    print(
        f"done: {metrics['iters']} steps, train loss {metrics['train_loss']:.4f}, "
        f"validation loss {losses}, {metrics['tokens_per_s']:,.0f} tokens/s "
        f"on {metrics['world_size']} process(es); "
        f"log, plot and checkpoint in {config.out_dir}"
    )


def run_experiment_command(name: str, quick: bool, seeds: int | None) -> None:
    from ropelib.model import import_chapters
    from ropelib.train import EXPERIMENTS, results_table, run_experiment

    import_chapters()  # chapters register their experiments when imported

    if name not in EXPERIMENTS:
        raise UsageError(
            f"unknown experiment {name!r}; choose from {', '.join(sorted(EXPERIMENTS))}"
        )
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {seeds}")
    results_dir = run_experiment(name, quick=quick, seeds=seeds)
    custom_table = EXPERIMENTS[name].table
    print(custom_table(results_dir) if custom_table else results_table(name, results_dir)[0])


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    try:
        args, rest = build_parser().parse_known_args(argv)
        if rest and args.command != "train":
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "bench":
            run_bench(args.name, args.quick)
        elif args.command == "train":
            run_train(rest)
        elif args.command == "experiment":
            run_experiment_command(args.name, args.quick, args.seeds)
    except (UsageError, ValueError) as error:  # bad input: one line, no traceback
        message = " ".join(str(error).split())
        print(f"ropelib: error: {message}", file=sys.stderr)
        return 2
    return 0


__all__ = [
    "build_parser",
    "main",
    "run_bench",
    "run_experiment_command",
    "run_train",
    "UsageError",
]
