"""The trainer: configuration and presets, optimiser, loop (with DDP), checkpoints and metrics.

`from ropelib.train import TrainConfig, PRESETS, train, load_model` keeps working: this package
re-exports the public names of its modules, which are generated from the notebooks by
`tools/export.py` (this file is written by hand). The trainer knows no experiment: the registry,
runner, records, statistics and tables are in `ropelib.experiments`.
"""

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
    estimate_memory,
    model_config,
)
from ropelib.train.evaluate import evaluate_protocol
from ropelib.train.loop import evaluate_lengths, micro_batch, train, train_step
from ropelib.train.metrics import METRICS, plot_metrics, read_metrics
from ropelib.train.optim import configure_optimizer, learning_rate, parameter_groups

__all__ = [
    "CHECKPOINT",
    "configure_optimizer",
    "config_from_args",
    "DEVICES",
    "DTYPES",
    "estimate_memory",
    "evaluate_lengths",
    "evaluate_protocol",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "METRICS",
    "micro_batch",
    "MODEL_FIELDS",
    "model_config",
    "parameter_groups",
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
