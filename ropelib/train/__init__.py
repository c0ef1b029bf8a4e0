"""The trainer: configuration and presets, optimiser, loop (with DDP), checkpoints and metrics.

`from ropelib.train import TrainConfig, PRESETS, train, load_model` keeps working: this package
re-exports the public names of its modules, which are generated from the notebooks by
`tools/export.py` (this file is written by hand). The trainer knows no experiment.
"""

import importlib

from ropelib.train.checkpoint import CHECKPOINT, load_checkpoint, load_model, save_checkpoint
from ropelib.train.config import (
    DEVICES,
    DTYPES,
    MODEL_FIELDS,
    PRESETS,
    SCHEDULES,
    TOKENIZERS,
    TrainConfig,
    config_from_args,
    model_config,
)
from ropelib.train.loop import evaluate_lengths, micro_batch, train, train_step
from ropelib.train.metrics import METRICS, plot_metrics, read_metrics
from ropelib.train.optim import configure_optimizer, learning_rate

# Names that lived in the one-module trainer before the experiment runner became its own layer,
# and the modules that define them now. They are forwarded on first use so that old imports keep
# working while callers move to the new modules; the trainer itself never uses them.
_MOVED = {
    "Experiment": "ropelib.experiments.runner",
    "EXPERIMENTS": "ropelib.experiments.runner",
    "register_experiment": "ropelib.experiments.runner",
    "register_custom_experiment": "ropelib.experiments.runner",
    "experiment_runs": "ropelib.experiments.runner",
    "experiment_dirs": "ropelib.experiments.runner",
    "run_experiment": "ropelib.experiments.runner",
    "run_lock": "ropelib.experiments.runner",
    "hardware": "ropelib.experiments.records",
    "git_commit": "ropelib.experiments.records",
    "load_results": "ropelib.experiments.records",
    "difference": "ropelib.experiments.stats",
    "results_table": "ropelib.experiments.tables",
    "plot_results": "ropelib.experiments.tables",
    "_atomic_write": "ropelib.files",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module 'ropelib.train' has no attribute {name!r}")
    importlib.import_module("ropelib.experiments")  # registers every experiment
    module = importlib.import_module(_MOVED[name])
    return getattr(module, "atomic_write" if name == "_atomic_write" else name)


__all__ = [
    "CHECKPOINT",
    "configure_optimizer",
    "config_from_args",
    "DEVICES",
    "DTYPES",
    "evaluate_lengths",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "METRICS",
    "micro_batch",
    "MODEL_FIELDS",
    "model_config",
    "plot_metrics",
    "PRESETS",
    "read_metrics",
    "save_checkpoint",
    "SCHEDULES",
    "TOKENIZERS",
    "train",
    "train_step",
    "TrainConfig",
]
