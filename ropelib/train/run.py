# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / Devices, precision and processes
"""Setting up a training run: devices, precision, processes, data, seeds, model and resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ropelib.files import exclusive_lock
from ropelib.model import ConfigError
from ropelib.train.checkpoint import CHECKPOINT, _restore, load_checkpoint
from ropelib.train.config import TrainConfig, model_config
from ropelib.train.metrics import METRICS, _reset_metrics
from ropelib.train.optim import configure_optimizer

LOCK = ".lock"  # in out_dir: held by the trainer that writes there


def _distributed_env() -> tuple[int, int, int]:
    read = os.environ.get
    return int(read("RANK", 0)), int(read("WORLD_SIZE", 1)), int(read("LOCAL_RANK", 0))


def _device(config: TrainConfig, local_rank: int) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but torch.cuda.is_available() is False"
        )
    if config.device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{local_rank}"


def _autocast(
    config: TrainConfig, device: str
) -> Callable[[], contextlib.AbstractContextManager]:
    bf16 = config.dtype == "bfloat16" or (
        config.dtype == "auto"
        and device.startswith("cuda")
        and torch.cuda.is_bf16_supported()
    )
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)


# %% notebooks/92_trainer.md: The trainer / Devices, precision and processes
def _load_data(config: TrainConfig, rank: int, world: int):
    import torch.distributed as dist

    from ropelib.data import prepare_dataset

    def prepare():
        return prepare_dataset(
            corpus=config.corpus,
            tokenizer=config.tokenizer,
            vocab_size=config.vocab_size,
            data_dir=config.data_dir,
            val_fraction=config.val_fraction,
        )

    if world > 1 and rank != 0:
        dist.barrier()  # process 0 tokenises and caches first
    data = prepare()
    if world > 1 and rank == 0:
        dist.barrier()
    for split in ("train", "val"):
        size = len(getattr(data, split))
        if size < config.block_size + 2:
            raise ConfigError(
                f"block_size={config.block_size} is longer than the {split} split of "
                f"corpus {config.corpus!r} ({size} tokens); use a smaller block_size"
            )
    return data


# %% notebooks/92_trainer.md: The trainer / Setting up a run
@dataclass
class _Run:
    config: TrainConfig
    rank: int
    world: int
    device: str
    raw_model: torch.nn.Module  # the GPT itself: evaluated and checkpointed
    model: torch.nn.Module  # what a step calls: compiled and/or wrapped in DDP
    optimizer: torch.optim.Optimizer
    data: Any  # ropelib.data.TokenData
    state: dict[str, Any]  # what a checkpoint saves besides the tensors
    autocast: Callable[[], contextlib.AbstractContextManager]
    resumed: bool

    @property
    def master(self) -> bool:
        return self.rank == 0  # only process 0 evaluates, logs and writes checkpoints

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out_dir)


def _initial_state(config: TrainConfig) -> dict[str, Any]:
    return {
        "config": dataclasses.asdict(config),
        "iter": 0,
        "metrics_lines": 0,
        "loss_sum": 0.0,
        "loss_count": 0,
        "train_time_s": 0.0,
        "wall_time_s": 0.0,
        "last_train_loss": None,
        "last_val_loss": None,
        "best_val_loss": None,
        "batch_sampling":  # nothing to save: batches are a function of (seed, step, index)
        "micro-batch j of step t: a torch.Generator seeded by SeedSequence([seed, t, j])",
    }


# %% notebooks/92_trainer.md: The trainer / Setting up a run
def _check_resumable(config: TrainConfig, saved: dict, out_dir: Path) -> None:
    free = {
        "resume",
        "overwrite",
        "progress",
        "compile",
        "device",
        "out_dir",
        "data_dir",
    }
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    for name, value in current.items():
        if name not in free and saved.get(name) != value:
            raise ConfigError(
                f"cannot resume: {name}={value!r} differs from {saved.get(name)!r} in the "
                f"checkpoint in {out_dir}; use another out_dir or the same {name}"
            )


# %% notebooks/92_trainer.md: The trainer / Setting up a run
def _start_run(config: TrainConfig, rank: int, world: int, device: str) -> _Run:
    from ropelib.model import GPT

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = (
            True  # TF32 products: ~2x on Ampere and later
        )
        torch.backends.cudnn.allow_tf32 = True
    out_dir = Path(config.out_dir)
    checkpoint = (
        load_checkpoint(out_dir) if config.resume else None
    )  # checked before the data
    if checkpoint is not None:
        _check_resumable(config, checkpoint[1]["config"], out_dir)
    data = _load_data(config, rank, world)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    raw_model = GPT(model_config(config, data.vocab_size)).to(device)
    optimizer = configure_optimizer(raw_model, config)
    state = _initial_state(config)
    if checkpoint is not None:
        tensors, saved = checkpoint
        _restore(raw_model, optimizer, tensors, saved)
        state.update({k: v for k, v in saved.items() if k in state and k != "config"})
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:  # a fresh run: no stale checkpoint may be resumed later
            for old in [
                out_dir / CHECKPOINT,
                *out_dir.glob("checkpoint-*.safetensors"),
            ]:
                old.unlink(missing_ok=True)
        _reset_metrics(out_dir / METRICS, state["metrics_lines"])
    model = torch.compile(raw_model) if config.compile else raw_model
    if world > 1:
        ids = [int(device.split(":")[1])] if device.startswith("cuda") else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    autocast = _autocast(config, device)
    resumed = checkpoint is not None
    return _Run(
        config,
        rank,
        world,
        device,
        raw_model,
        model,
        optimizer,
        data,
        state,
        autocast,
        resumed,
    )


# %% notebooks/92_trainer.md: The trainer / One trainer per directory
@contextlib.contextmanager
def _own_out_dir(config: TrainConfig, rank: int) -> Iterator[None]:
    if rank != 0:  # process 0 holds the directory for every process of the run
        yield
        return
    out_dir = Path(config.out_dir)
    with exclusive_lock(out_dir / LOCK) as mine:
        if not mine:
            raise ConfigError(
                f"out_dir {out_dir} is in use by another live trainer; "
                "wait for it to finish or choose another out_dir"
            )
        existing = [name for name in (CHECKPOINT, METRICS) if (out_dir / name).exists()]
        existing += sorted(p.name for p in out_dir.glob("checkpoint-*.safetensors"))
        if existing and not (config.resume or config.overwrite):
            raise ConfigError(
                f"out_dir {out_dir} already holds a run ({', '.join(existing)}); continue it "
                "with --resume=true or start it again with --overwrite=true"
            )
        yield


__all__ = [
    "LOCK",
]
