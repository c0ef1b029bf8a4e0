# generated from notebooks/90_cli.md by tools/export.py, do not edit

# %% notebooks/90_cli.md: The command line / Parsing the arguments
"""The command line `python -m ropelib COMMAND ...` (the chapter *The command line*)."""

from __future__ import annotations

import argparse
import sys

from ropelib.model import ConfigError


class UsageError(Exception):
    """Bad command-line syntax. Defined in the chapter *The command line*."""


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ):  # argparse would print the whole usage; one line is enough
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m ropelib`. Defined in the chapter *The command line*."""
    parser = _Parser(
        prog="python -m ropelib", description="ropelib: rotary position embeddings"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    bench = commands.add_parser("bench", help="run a benchmark and print ratios")
    bench.add_argument("name", help="benchmark name, e.g. rope")
    bench.add_argument("--quick", action="store_true", help="a small size, seconds")
    commands.add_parser(
        "train",
        help="train one model",
        usage="python -m ropelib train [--preset=NAME] [--key=value ...]",
        description="Train a GPT. Every field of ropelib.train.TrainConfig is a "
        "--key=value option (e.g. --pe=rope --max_iters=200 --resume); presets: "
        "cpu-tiny, cpu-small, crope-paper, tinystories-33m, gpt2-124m.",
    )
    experiment = commands.add_parser("experiment", help="run a registered experiment")
    experiment.add_argument("name", help="experiment name, e.g. pe-basics")
    experiment.add_argument("--quick", action="store_true", help="tiny runs, in runs/")
    experiment.add_argument("--seeds", type=int, default=None, help="number of seeds")
    return parser


# %% notebooks/90_cli.md: The command line / The commands
def run_bench(name: str, quick: bool) -> None:
    """Run a benchmark. Defined in the chapter *The command line*."""
    from ropelib.bench import BENCHMARKS

    if name not in BENCHMARKS:
        choices = ", ".join(sorted(BENCHMARKS))
        raise UsageError(f"unknown benchmark {name!r}; choose from {choices}")
    BENCHMARKS[name](quick=quick)


def run_train(overrides: list[str]) -> None:
    """Train one model. Defined in the chapter *The command line*."""
    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.train.config import config_from_args
    from ropelib.train.loop import train

    config = config_from_args(overrides)
    metrics = train(config)
    if metrics["rank"] != 0:  # under torchrun, process 0 reports
        return
    losses = ", ".join(
        f"{k} {'-' if v is None else f'{v:.4f}'}"
        for k, v in (metrics["val_loss"] or {}).items()
    )
    print(
        f"done: {metrics['iters']} steps, train loss {metrics['train_loss']:.4f}, "
        f"validation loss {losses}, {metrics['tokens_per_s']:,.0f} tokens/s "
        f"on {metrics['world_size']} process(es); "
        f"log, plot and checkpoint in {config.out_dir}"
    )


def run_experiment_command(name: str, quick: bool, seeds: int | None) -> None:
    """Run an experiment. Defined in the chapter *The command line*."""
    import ropelib.experiments  # noqa: F401  (registers every experiment of the book)
    import ropelib.schemes  # noqa: F401  (and every position scheme)
    from ropelib.experiments.runner import EXPERIMENTS, run_experiment
    from ropelib.experiments.tables import results_table

    if name not in EXPERIMENTS:
        choices = ", ".join(sorted(EXPERIMENTS))
        raise UsageError(f"unknown experiment {name!r}; choose from {choices}")
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {seeds}")
    results_dir = run_experiment(name, quick=quick, seeds=seeds)
    table = EXPERIMENTS[name].table
    print(table(results_dir) if table else results_table(name, results_dir)[0])


# %% notebooks/90_cli.md: The command line / Bad input and bugs
def main(argv: list[str] | None = None) -> int:
    """Run it; exit status 2 on bad input. Defined in the chapter *The command line*."""
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
    except (UsageError, ConfigError) as error:  # anything else keeps its traceback
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
