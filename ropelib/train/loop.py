# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / Batches that do not depend on how they are computed
"""The training loop: micro-batches, one optimiser step, evaluation at several lengths, DDP."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ropelib.train.checkpoint import (
    CHECKPOINT,
    _restore,
    load_checkpoint,
    save_checkpoint,
)
from ropelib.train.config import TrainConfig, model_config
from ropelib.train.metrics import (
    METRICS,
    _append,
    _reset_metrics,
    plot_metrics,
    read_metrics,
)
from ropelib.train.optim import configure_optimizer, learning_rate


def micro_batch(
    tokens: np.ndarray,
    config: TrainConfig,
    iteration: int,
    index: int,
    device: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Micro-batch `index` of step `iteration`. Defined in the chapter *Training*."""
    from ropelib.data import get_batch

    seed = np.random.SeedSequence([config.seed, iteration, index]).generate_state(1)[0]
    generator = torch.Generator().manual_seed(int(seed))
    return get_batch(
        tokens, config.batch_size, config.block_size, generator, device=device
    )


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    grad_clip: float = 0.0,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[torch.Tensor, float]:
    """One optimiser step; (mean loss, grad norm). Defined in the chapter *Training*."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    total = torch.zeros((), device=batches[0][0].device)
    for index, (x, y) in enumerate(batches):
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            # average the gradients across processes once, after the last micro-batch
            model.require_backward_grad_sync = index == len(batches) - 1
        with autocast():
            _, loss = model(x, y)
        (loss / len(batches)).backward()
        total += loss.detach().float()
    norm = 0.0
    if grad_clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / len(batches), norm


# %% notebooks/03_training.md: Training / Validation at longer contexts
@torch.no_grad()
def evaluate_lengths(
    model: torch.nn.Module,
    tokens: np.ndarray,
    block_size: int,
    lengths: Sequence[int] = (1, 2, 4),
    batch_size: int = 16,
    max_batches: int = 20,
    device: str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, float | None]:
    """Mean validation loss at each multiple of block_size. Defined in the chapter *Training*."""
    from ropelib.data import iter_eval_batches

    max_length = getattr(model, "max_length", None)
    was_training = model.training
    model.eval()
    losses: dict[str, float | None] = {}
    for multiple in lengths:
        length = multiple * block_size
        if (max_length is not None and length > max_length) or len(tokens) < length + 1:
            losses[f"{multiple}x"] = None
            continue
        batch = max(1, batch_size // multiple)
        values = []
        for x, y in iter_eval_batches(tokens, batch, length, max_batches):
            with autocast():
                _, loss = model(x.to(device), y.to(device))
            values.append(float(loss))
        losses[f"{multiple}x"] = sum(values) / len(values)
    model.train(was_training)
    return losses


# %% notebooks/03_training.md: Training / The loop
def _distributed_env() -> tuple[int, int, int]:
    read = os.environ.get
    return int(read("RANK", 0)), int(read("WORLD_SIZE", 1)), int(read("LOCAL_RANK", 0))


def _device(config: TrainConfig, local_rank: int) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
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
            raise ValueError(
                f"block_size={config.block_size} is longer than the {split} split of "
                f"corpus {config.corpus!r} ({size} tokens); use a smaller block_size"
            )
    return data


def _check_resumable(config: TrainConfig, saved: dict, out_dir: Path) -> None:
    free = {"resume", "progress", "compile", "device", "out_dir", "data_dir"}
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    for name, value in current.items():
        if name not in free and saved.get(name) != value:
            raise ValueError(
                f"cannot resume: {name}={value!r} differs from {saved.get(name)!r} in the "
                f"checkpoint in {out_dir}; use another out_dir or the same {name}"
            )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train a GPT; returns the final metrics. Defined in the chapter *Training*."""
    import torch.distributed as dist

    rank, world, local_rank = _distributed_env()
    if config.grad_accum % world:
        raise ValueError(
            f"grad_accum={config.grad_accum} must be a multiple of WORLD_SIZE={world}"
        )
    device = _device(config, local_rank)
    if world > 1:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        return _train(config, rank, world, device)
    finally:
        if world > 1:
            dist.destroy_process_group()


# %% notebooks/03_training.md: Training / The loop
def _train(config: TrainConfig, rank: int, world: int, device: str) -> dict[str, Any]:
    import torch.distributed as dist
    from tqdm import tqdm

    from ropelib.model import GPT

    master, out_dir = rank == 0, Path(config.out_dir)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = (
            True  # TF32 products: ~2x on Ampere and later
        )
        torch.backends.cudnn.allow_tf32 = True
    autocast = _autocast(config, device)
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
    state: dict[str, Any] = {
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
    if checkpoint is not None:
        tensors, saved = checkpoint
        _restore(raw_model, optimizer, tensors, saved)
        state.update({k: v for k, v in saved.items() if k in state and k != "config"})
    metrics = out_dir / METRICS
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:  # a fresh run: no stale checkpoint may be resumed later
            for old in [
                out_dir / CHECKPOINT,
                *out_dir.glob("checkpoint-*.safetensors"),
            ]:
                old.unlink(missing_ok=True)
        _reset_metrics(metrics, state["metrics_lines"])
    model = torch.compile(raw_model) if config.compile else raw_model
    if world > 1:
        ids = [int(device.split(":")[1])] if device.startswith("cuda") else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def log(record: dict) -> None:
        if master:
            _append(metrics, record)
        state["metrics_lines"] += 1

    def evaluate(iteration: int) -> None:
        if master:
            losses = evaluate_lengths(
                raw_model,
                data.val,
                config.block_size,
                config.eval_lengths,
                config.batch_size,
                config.eval_iters,
                device,
                autocast,
            )
            first = losses[f"{config.eval_lengths[0]}x"]
            if first is not None and (
                state["best_val_loss"] is None or first < state["best_val_loss"]
            ):
                state["best_val_loss"] = first
            state["last_val_loss"] = losses
            log({"iter": iteration, "kind": "eval", "val_loss": losses})
            shown = " ".join(
                f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in losses.items()
            )
            tqdm.write(f"iter {iteration:>6}: validation loss {shown}")
        else:
            state["metrics_lines"] += 1

    if state["iter"] == 0 and checkpoint is None:
        evaluate(0)
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    mine = range(
        rank, config.grad_accum, world
    )  # this process's micro-batches of each step
    show = master and config.progress and sys.stderr.isatty()
    bar = tqdm(
        total=config.max_iters, initial=state["iter"], disable=not show, unit="step"
    )
    session_start = log_start = time.perf_counter()
    wall_before, log_tokens = state["wall_time_s"], 0
    for iteration in range(state["iter"], config.max_iters):
        step_start = time.perf_counter()
        lr = learning_rate(config, iteration)
        batches = [micro_batch(data.train, config, iteration, j, device) for j in mine]
        loss, grad_norm = train_step(
            model, optimizer, batches, lr, config.grad_clip, autocast
        )
        if world > 1:
            dist.all_reduce(loss)  # the logged loss is the mean over the global batch
            loss = loss / world
        loss = float(loss)
        state["train_time_s"] += time.perf_counter() - step_start
        state["loss_sum"] += loss
        state["loss_count"] += 1
        log_tokens += tokens_per_step
        done = iteration + 1
        state["iter"] = done
        bar.update(1)
        if done % config.log_interval == 0 or done == config.max_iters:
            now = time.perf_counter()
            mean_loss = state["loss_sum"] / state["loss_count"]
            speed = log_tokens / max(now - log_start, 1e-9)
            bar.set_postfix(loss=f"{mean_loss:.4f}", tok_per_s=f"{speed:,.0f}")
            log({"iter": done, "kind": "train", "loss": mean_loss, "lr": lr,
                 "grad_norm": grad_norm, "tokens_per_s": speed,
                 "elapsed_s": wall_before + now - session_start})  # fmt: skip
            state.update(last_train_loss=mean_loss, loss_sum=0.0, loss_count=0)
            log_start, log_tokens = now, 0
        if done % config.eval_interval == 0 or done == config.max_iters:
            evaluate(done)
        if master and (
            done % config.checkpoint_interval == 0 or done == config.max_iters
        ):
            state["wall_time_s"] = wall_before + time.perf_counter() - session_start
            state["scheduler"] = {
                "schedule": config.schedule,
                "next_lr": learning_rate(config, done),
            }
            save_checkpoint(out_dir, raw_model, optimizer, state)
    bar.close()
    state["wall_time_s"] = wall_before + time.perf_counter() - session_start
    if master:
        title = f"pe={config.pe}, {config.n_layer}x{config.n_embd}, {Path(config.corpus).name}"
        plot_metrics(read_metrics(out_dir), out_dir / "loss.png", title=title)
    return {
        "iters": state["iter"],
        "train_loss": state["last_train_loss"],
        "val_loss": state["last_val_loss"],
        "best_val_loss": state["best_val_loss"],
        "tokens_per_s": state["iter"]
        * tokens_per_step
        / max(state["train_time_s"], 1e-9),
        "wall_time_s": state["wall_time_s"],
        "tokens_seen": state["iter"] * tokens_per_step,
        "n_params": sum(p.numel() for p in raw_model.parameters()),
        "device": device,
        "world_size": world,
        "rank": rank,
    }


__all__ = [
    "evaluate_lengths",
    "micro_batch",
    "train",
    "train_step",
]
