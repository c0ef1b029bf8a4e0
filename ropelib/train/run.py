# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / Devices, precision and processes
"""Setting up a training run: devices, precision, processes, data, seeds, model and resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ropelib.files import (
    RunError,
    StorageError,
    exclusive_lock,
    os_reason,
    prepare_directory,
)
from ropelib.model import ConfigError
from ropelib.train.checkpoint import CHECKPOINT, _restore, load_checkpoint
from ropelib.train.config import TrainConfig, estimate_memory, model_config
from ropelib.train.metrics import METRICS, _reset_metrics
from ropelib.train.optim import configure_optimizer

LOCK = ".lock"  # in out_dir: held by the trainer that writes there


def _distributed_env() -> tuple[int, int, int]:
    values = []
    for name, default in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        text = os.environ.get(name, default).strip()
        try:
            values.append(int(text))
        except ValueError:
            message = f"environment variable {name} must be an integer, got {text!r}"
            raise ConfigError(message) from None
    rank, world, local_rank = values
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise ConfigError(
            f"environment variables WORLD_SIZE={world} (at least 1), RANK={rank} (in "
            f"[0, WORLD_SIZE)) and LOCAL_RANK={local_rank} (non-negative) do not fit"
        )
    missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(n)]
    if world > 1 and missing:
        raise ConfigError(
            f"WORLD_SIZE={world} needs the environment variables {' and '.join(missing)}; "
            "start data-parallel runs with torchrun"
        )
    return rank, world, local_rank


# %% notebooks/92_trainer.md: The trainer / Devices, precision and processes
def _device(config: TrainConfig, local_rank: int) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but torch.cuda.is_available() is False"
        )
    if config.device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK={local_rank} names a GPU this machine does not have "
            f"({torch.cuda.device_count()} visible)"
        )
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
    try:
        data = prepare()
    except OSError as error:
        raise StorageError(
            f"could not prepare corpus {config.corpus!r} in data_dir="
            f"{config.data_dir!r}: {os_reason(error)}"
        ) from None
    except ValueError as error:  # a corpus too small for its splits, ...
        raise ConfigError(f"corpus {config.corpus!r}: {error}") from None
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


# %% notebooks/92_trainer.md: The trainer / The size of a run
def _machine_memory(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    with contextlib.suppress(OSError, ValueError):  # a container's limit, if any
        limits.append(int(Path("/sys/fs/cgroup/memory.max").read_text().strip()))
    return min(limits)


def _check_fits(config: TrainConfig, vocab_size: int | None, device: str) -> None:
    if vocab_size is None:  # before the data: characters are a few hundred at most
        vocab_size = config.vocab_size if config.tokenizer == "bpe" else 256
    need, have = estimate_memory(config, vocab_size), _machine_memory(device)
    where = f"the {have / 2**30:.1f} GiB of {device}"
    if need["model_bytes"] > have:
        sizes = {"n_layer": config.n_layer / 12, "n_embd": config.n_embd / 768}
        sizes["vocab_size"] = vocab_size / 50304
        name = max(sizes, key=sizes.get)
        raise ConfigError(
            f"{name}={getattr(config, name) if name != 'vocab_size' else vocab_size}: "
            f"{need['parameters']:.3g} parameters need at least "
            f"{need['model_bytes'] / 2**30:.3g} GiB for weights, gradients and AdamW's "
            f"moments, more than {where}; use a smaller {name}"
        )
    if need["model_bytes"] + need["activation_bytes"] > have:
        name = (
            "batch_size"
            if config.batch_size / 12 >= config.block_size / 1024
            else "block_size"
        )
        raise ConfigError(
            f"{name}={getattr(config, name)}: one micro-batch needs at least "
            f"{need['activation_bytes'] / 2**30:.3g} GiB of activations besides the model, "
            f"more than {where}; use a smaller {name} (and a larger grad_accum)"
        )


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
    saved_at: int | None = (
        None  # the step of the last checkpoint written or resumed from
    )

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
        "bad_steps": 0,  # steps skipped for a non-finite loss or gradient
        "data": None,  # what the run was trained on: the data's fingerprint
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
        "eval_tokens",  # only the final evaluation, which a resumed run computes again
    }
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig())))
    for (
        name,
        value,
    ) in current.items():  # a field newer than the checkpoint: its default
        if name not in free and saved.get(name, defaults[name]) != value:
            raise ConfigError(
                f"cannot resume: {name}={value!r} differs from {saved.get(name)!r} in the "
                f"checkpoint in {out_dir}; use another out_dir or the same {name}"
            )


# %% notebooks/92_trainer.md: The trainer / Setting up a run
def _resume(model, optimizer, state: dict, checkpoint, data: dict, config) -> None:
    tensors, saved = checkpoint
    recorded = (
        saved.get("data") or {}
    )  # checkpoints older than the fingerprint have none
    changed = [
        k for k, v in recorded.items() if None not in (v, data.get(k)) and data[k] != v
    ]
    if changed:
        raise ConfigError(
            f"cannot resume {config.out_dir}: the data differs from the checkpoint's "
            f"({', '.join(changed)}); restore corpus {config.corpus!r} or start again "
            "with --overwrite=true"
        )
    try:
        _restore(model, optimizer, tensors, saved)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise ConfigError(
            f"the checkpoint in {config.out_dir} does not fit this model ({reason}); "
            "start again with --overwrite=true"
        ) from None
    state.update(
        {k: v for k, v in saved.items() if k in state and k not in ("config", "data")}
    )


# %% notebooks/92_trainer.md: The trainer / Setting up a run
def _initialise_from(model, init_from: str, data: dict) -> None:
    """The weights of the run in `init_from`, for a fine-tune (the optimiser starts fresh)."""
    checkpoint = load_checkpoint(init_from)
    if checkpoint is None:
        raise ConfigError(
            f"init_from: no checkpoint in {init_from}: train that run first"
        )
    tensors, saved = checkpoint
    theirs = (saved.get("data") or {}).get("tokenizer_sha256")
    if theirs is not None and theirs != data.get("tokenizer_sha256"):
        raise ConfigError(
            f"init_from: the run in {init_from} was trained with another tokenizer; use "
            "its corpus, tokenizer and vocab_size"
        )
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()[:200]
        raise ConfigError(
            f"init_from: the run in {init_from} does not fit this model ({reason})"
        ) from None


def _clear_out_dir(out_dir: Path, fresh: bool, keep: int) -> None:
    try:
        if fresh:  # no stale checkpoint may be resumed later
            for old in [
                out_dir / CHECKPOINT,
                *out_dir.glob("checkpoint-*.safetensors"),
            ]:
                old.unlink(missing_ok=True)
        _reset_metrics(out_dir / METRICS, keep)
    except OSError as error:
        raise StorageError(
            f"could not prepare out_dir {out_dir}: {os_reason(error)}"
        ) from None


# %% notebooks/92_trainer.md: The trainer / Setting up a run
def _start_run(config: TrainConfig, rank: int, world: int, device: str) -> _Run:
    from ropelib.model import GPT

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32: ~2x on Ampere and later
        torch.backends.cudnn.allow_tf32 = True
    out_dir = Path(config.out_dir)
    # the checkpoint is read and checked before the data, so that a bad resume fails at once
    checkpoint = load_checkpoint(out_dir) if config.resume else None
    if checkpoint is not None:
        _check_resumable(config, checkpoint[1]["config"], out_dir)
    data = _load_data(config, rank, world)
    _check_fits(
        config, data.vocab_size, device
    )  # the real vocabulary, before the model
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)  # the same initial weights in every process
    raw_model = GPT(model_config(config, data.vocab_size)).to(device)
    optimizer = configure_optimizer(raw_model, config)
    state = {**_initial_state(config), "data": data.fingerprint}
    if checkpoint is not None:
        _resume(raw_model, optimizer, state, checkpoint, data.fingerprint, config)
    elif (
        config.init_from
    ):  # a fine-tune: the weights of a trained run, a fresh optimiser
        _initialise_from(raw_model, config.init_from, data.fingerprint)
    if rank == 0:
        _clear_out_dir(out_dir, fresh=checkpoint is None, keep=state["metrics_lines"])
    model = torch.compile(raw_model) if config.compile else raw_model
    if world > 1:
        ids = [int(device.split(":")[1])] if device.startswith("cuda") else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    autocast = _autocast(config, device)
    resumed = checkpoint is not None
    saved_at = state["iter"] if resumed else None
    return _Run(config, rank, world, device, raw_model, model, optimizer, data, state,
                autocast, resumed, saved_at)  # fmt: skip


# %% notebooks/92_trainer.md: The trainer / One trainer per directory
@contextlib.contextmanager
def _own_out_dir(config: TrainConfig, rank: int) -> Iterator[None]:
    if rank != 0:  # process 0 holds the directory for every process of the run
        yield
        return
    out_dir = Path(config.out_dir)
    for name in ("out_dir", "data_dir"):  # usable, before any data is read
        try:
            prepare_directory(getattr(config, name))
        except OSError as error:
            path = getattr(config, name)
            raise ConfigError(
                f"{name}={path!r} cannot be written: {os_reason(error)}"
            ) from None
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


# %% notebooks/92_trainer.md: The trainer / Faults that stop a run
class Diverged(RunError):
    """The loss or gradient is not finite. Defined in the chapter *The trainer*."""

    exit_code = 3


class Interrupted(RunError):
    """Stopped by SIGINT/SIGTERM; status 128 + signal. Defined in the chapter *The trainer*."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class DistributedError(RunError):
    """A process of the run stalled or died. Defined in the chapter *The trainer*."""

    exit_code = 5


class _Stop:
    signum: int | None = None  # the signal received, acted on at the next step boundary
    armed = False  # True while the loop runs: a signal waits for the step to end


@contextlib.contextmanager
def _interrupts(after: str) -> Iterator[_Stop]:
    stop = _Stop()

    def handle(signum, frame):
        if stop.armed and stop.signum is None:
            stop.signum = signum
            return
        name = signal.Signals(signum).name
        raise Interrupted(f"interrupted by {name}; {after}", signum)

    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only
        return
    previous = {
        sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = [
    "DistributedError",
    "Diverged",
    "Interrupted",
    "LOCK",
]
