# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / A registry of experiments
"""The experiment registry and runner: named lists of runs over seeds, skipped when done."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ropelib.experiments.records import make_record, provenance, write_record
from ropelib.files import exclusive_lock, os_reason, prepare_directory
from ropelib.model import ConfigError
from ropelib.train.config import TrainConfig
from ropelib.train.loop import train
from ropelib.train.metrics import read_metrics
from ropelib.train.run import _interrupts


@dataclass
class Experiment:
    """Configurations run over seeds. Defined in the chapter *The experiment runner*."""

    name: str
    configs: Callable[[bool], dict[str, TrainConfig]]  # quick -> {label: config}
    seeds: int = 3
    description: str = ""
    # experiments that are not language-model runs bring their own runner and table:
    # runner(quick=, seeds=, results_dir=, runs_dir=, data_dir=) writes results_dir/*.json
    # (runs_dir: the root of all experiments' checkpoints); table(results_dir) -> str
    runner: Callable[..., object] | None = None
    table: Callable[[Path], str] | None = None


EXPERIMENTS: dict[str, Experiment] = {}


# %% notebooks/93_experiments.md: The experiment runner / A registry of experiments
def register_custom_experiment(
    name: str,
    runner: Callable[..., object],
    table: Callable[[Path], str],
    seeds: int = 3,
) -> None:
    """Register an experiment run by `runner`. Defined in the chapter *The experiment runner*."""
    description = (
        (runner.__doc__ or "").strip().splitlines()[0] if runner.__doc__ else ""
    )
    EXPERIMENTS[name] = Experiment(
        name, lambda quick: {}, seeds, description, runner, table
    )


def register_experiment(name: str, seeds: int = 3) -> Callable:
    """Register `fn(quick) -> {label: config}`. Defined in the chapter *The experiment runner*."""

    def decorate(fn: Callable[[bool], dict[str, TrainConfig]]) -> Callable:
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        EXPERIMENTS[name] = Experiment(name, fn, seeds, description)
        return fn

    return decorate


# %% notebooks/93_experiments.md: The experiment runner / Runs and where they go
def experiment_dirs(quick: bool = False) -> tuple[Path, Path]:
    """(results dir, checkpoints dir). Defined in the chapter *The experiment runner*."""
    if quick:
        return Path("runs/quick/results"), Path("runs/quick")
    return Path("results"), Path("runs")


MAX_SEEDS = 1000  # a sane limit: the book's experiments use 3


def _check_seeds(seeds: object) -> int:
    if (
        isinstance(seeds, bool)
        or not isinstance(seeds, int)
        or not 1 <= seeds <= MAX_SEEDS
    ):
        raise ConfigError(
            f"seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}"
        )
    return seeds


def experiment_runs(
    name: str, quick: bool = False, seeds: int | None = None
) -> list[tuple[str, str, TrainConfig]]:
    """(run name, label, config) of each run. Defined in the chapter *The experiment runner*."""
    if name not in EXPERIMENTS:
        raise ConfigError(
            f"experiment must be one of {', '.join(sorted(EXPERIMENTS))}, got {name!r}"
        )
    experiment = EXPERIMENTS[name]
    seeds = _check_seeds(
        seeds if seeds is not None else (1 if quick else experiment.seeds)
    )
    runs = []
    for label, config in experiment.configs(quick).items():
        for seed in range(seeds):
            runs.append(
                (f"{label}-seed{seed}", label, dataclasses.replace(config, seed=seed))
            )
    return runs


# %% notebooks/93_experiments.md: The experiment runner / One owner per run
@contextlib.contextmanager
def run_lock(path: str | Path) -> Iterator[bool]:
    """Yield True if this process owns the run. Defined in the chapter *The experiment runner*."""
    with exclusive_lock(path) as mine:
        yield mine


# %% notebooks/93_experiments.md: The experiment runner / The runner
def run_experiment(
    name: str,
    quick: bool = False,
    seeds: int | None = None,
    results_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> Path:
    """Train every run that has no result yet. Defined in the chapter *The experiment runner*."""
    default_results, default_runs = experiment_dirs(quick)
    results = Path(results_dir or default_results) / name
    checkpoints = Path(runs_dir or default_runs) / name
    runs = experiment_runs(name, quick, seeds)  # checks the name and the seeds first
    for path in (results, checkpoints):
        try:
            prepare_directory(path)
        except OSError as error:
            raise ConfigError(f"{path} cannot be written: {os_reason(error)}") from None
    after = f"finished runs' records in {results} are kept; run it again to go on"
    with _interrupts(after):  # a signal between runs stops at once, in one line
        _run_all(name, quick, seeds, results, checkpoints, data_dir, runs)
    return results


def _run_all(name, quick, seeds, results, checkpoints, data_dir, runs) -> None:
    experiment = EXPERIMENTS[name]
    if experiment.runner is not None:
        experiment.runner(
            quick=quick,
            seeds=seeds or experiment.seeds,
            results_dir=results,
            runs_dir=checkpoints.parent,
            data_dir=data_dir,
        )
        return
    origin = provenance()  # the same commit and machine for every run of this call
    for run, label, config in runs:
        path = results / f"{run}.json"
        if path.exists():
            print(f"{name}/{run}: done already")
            continue
        with run_lock(checkpoints / f"{run}.lock") as mine:
            if (
                not mine or path.exists()
            ):  # another worker trains it, or just finished it
                print(
                    f"{name}/{run}: {'done already' if mine else 'taken by another worker'}"
                )
                continue
            print(f"{name}/{run}: training")
            _train_and_record(
                name, run, label, config, quick, checkpoints, data_dir, path, origin
            )


# %% notebooks/93_experiments.md: The experiment runner / The runner
def _train_and_record(
    name, run, label, config, quick, checkpoints, data_dir, path, origin
) -> None:
    config = dataclasses.replace(config, out_dir=str(checkpoints / run), resume=True)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))
    metrics = train(config)
    record = make_record(
        experiment=name,
        run=run,
        label=label,
        seed=config.seed,
        quick=quick,
        config=config,
        final=metrics,
        history=read_metrics(config.out_dir),
        wall_time_s=metrics["wall_time_s"],
        origin=origin,
        train_loss=metrics["train_loss"],
        val_loss=metrics["val_loss"],
    )
    write_record(path, record)


__all__ = [
    "Experiment",
    "experiment_dirs",
    "experiment_runs",
    "EXPERIMENTS",
    "MAX_SEEDS",
    "register_custom_experiment",
    "register_experiment",
    "run_experiment",
    "run_lock",
]
