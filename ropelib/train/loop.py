# generated from notebooks/03_training.md, notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / Batches that do not depend on how they are computed
"""The training loop: micro-batches, one optimiser step, evaluation at several lengths."""

from __future__ import annotations

import contextlib
import datetime
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ropelib.files import StorageError, os_reason
from ropelib.model import ConfigError
from ropelib.train.checkpoint import save_checkpoint
from ropelib.train.config import TrainConfig
from ropelib.train.evaluate import evaluate_protocol
from ropelib.train.metrics import METRICS, _append, plot_metrics, read_metrics
from ropelib.train.optim import learning_rate
from ropelib.train.run import (
    DistributedError,
    Diverged,
    Interrupted,
    _check_fits,
    _device,
    _distributed_env,
    _interrupts,
    _own_out_dir,
    _Run,
    _start_run,
)


# %% notebooks/03_training.md: Training / Batches that do not depend on how they are computed
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


class _MicroBatches(Sequence):
    # A process's micro-batches of one step, each drawn only when the step reaches it.
    def __init__(
        self, tokens, config: TrainConfig, iteration: int, indices, device: str
    ):
        self.args, self.indices = (tokens, config, iteration), indices
        self.device = device

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return micro_batch(*self.args, self.indices[i], device=self.device)


# %% notebooks/03_training.md: Training / Batches that do not depend on how they are computed
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
    parallel = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    total = 0.0
    for index, (x, y) in enumerate(batches):
        if parallel:  # average the gradients across processes once, after the last one
            model.require_backward_grad_sync = index == len(batches) - 1
        with autocast():
            _, loss = model(x, y)
        (loss / len(batches)).backward()
        total = total + loss.detach().float()
    total = total / len(batches)
    if parallel:
        torch.distributed.all_reduce(total)
        total = total / torch.distributed.get_world_size()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if grad_clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    else:
        norm = float(torch.nn.utils.get_total_norm(grads))
    if math.isfinite(norm) and math.isfinite(float(total)):  # else: skipped
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, norm


# %% notebooks/03_training.md: Training / The running evaluation
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
def train(config: TrainConfig) -> dict[str, Any]:
    """Train a GPT; returns the final metrics. Defined in the chapter *Training*."""
    import torch.distributed as dist

    rank, world, local_rank = _distributed_env()
    if config.grad_accum % world:
        raise ConfigError(
            f"grad_accum={config.grad_accum} must be a multiple of WORLD_SIZE={world}"
        )
    device = _device(config, local_rank)
    # the model and a micro-batch must fit the device, checked before any data is read
    _check_fits(config, None, device)
    after = f"the last checkpoint in {config.out_dir}, if any, is kept"
    with _interrupts(after) as stop, _own_out_dir(config, rank):
        if world == 1:
            return _train(config, rank, world, device, stop)
        backend = "nccl" if device.startswith("cuda") else "gloo"
        timeout = datetime.timedelta(seconds=config.ddp_timeout_s)
        dist.init_process_group(backend=backend, timeout=timeout)
        try:
            return _train(config, rank, world, device, stop)
        except RuntimeError as error:  # Gloo's timeouts are plain RuntimeErrors
            reason = " ".join(str(error).split())[:200]
            stalled = ("timed out", "timeout", "connection", "peer")
            if not isinstance(error, dist.DistError) and not any(
                word in reason.lower() for word in stalled
            ):
                raise  # a bug keeps its traceback
            raise DistributedError(f"a collective failed: {reason}; {after}") from None
        finally:
            dist.destroy_process_group()


# %% notebooks/03_training.md: Training / The loop
def _interrupted(run, stop, done: int) -> Interrupted:
    """The one-line error of a run stopped by a signal, after its checkpoint."""
    name = signal.Signals(stop.signum).name
    message = f"stopped by {name} at step {done}; checkpoint saved in {run.out_dir}"
    return Interrupted(f"{message}; continue with --resume=true", stop.signum)


# %% notebooks/03_training.md: Training / The loop
def _train(
    config: TrainConfig, rank: int, world: int, device: str, stop
) -> dict[str, Any]:
    from tqdm import tqdm

    run = _start_run(config, rank, world, device)
    state = run.state
    if state["iter"] == 0 and not run.resumed:
        _evaluate(run, 0)
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    mine = range(rank, config.grad_accum, world)  # this process's micro-batches
    show = run.master and config.progress and sys.stderr.isatty()
    bar = tqdm(
        total=config.max_iters, initial=state["iter"], disable=not show, unit="step"
    )
    session_start = log_start = time.perf_counter()
    wall_before, log_tokens = state["wall_time_s"], 0
    stop.armed = True  # a signal now stops the run at the next step boundary
    for iteration in range(state["iter"], config.max_iters):
        step_start = time.perf_counter()
        lr = learning_rate(config, iteration)
        batches = _MicroBatches(run.data.train, config, iteration, mine, device)
        loss, grad_norm = train_step(
            run.model, run.optimizer, batches, lr, config.grad_clip, run.autocast
        )
        state["train_time_s"] += time.perf_counter() - step_start
        state["iter"] = done = iteration + 1
        if math.isfinite(loss := float(loss)) and math.isfinite(grad_norm):
            state["loss_sum"] += loss
            state["loss_count"] += 1
        else:  # the divergence guard: the step was skipped; may the run go on?
            _bad_step(run, done, loss, grad_norm)
        log_tokens += tokens_per_step
        bar.update(1)
        last = done == config.max_iters
        if (done % config.log_interval == 0 or last) and state["loss_count"]:
            now = time.perf_counter()
            mean_loss = state["loss_sum"] / state["loss_count"]
            speed = log_tokens / max(now - log_start, 1e-9)
            bar.set_postfix(loss=f"{mean_loss:.4f}", tok_per_s=f"{speed:,.0f}")
            _log(run, {"iter": done, "kind": "train", "loss": mean_loss, "lr": lr,
                       "grad_norm": grad_norm, "tokens_per_s": speed,
                       "elapsed_s": wall_before + now - session_start})  # fmt: skip
            state.update(last_train_loss=mean_loss, loss_sum=0.0, loss_count=0)
            log_start, log_tokens = now, 0
        if done % config.eval_interval == 0 or last:
            _evaluate(run, done)
        stopping = _stop_requested(run, stop)  # SIGINT or SIGTERM, in any process
        if done % config.checkpoint_interval == 0 or last or stopping:
            _checkpoint(run, done, wall_before + time.perf_counter() - session_start)
        if stopping and not last:
            raise _interrupted(run, stop, done)
    stop.armed = False
    bar.close()
    state["wall_time_s"] = wall_before + time.perf_counter() - session_start
    summary = _summary(run, tokens_per_step)
    if run.master:
        summary["protocol"] = _final_evaluation(run)
    return summary


# %% notebooks/03_training.md: Training / The loop
def _final_evaluation(run: _Run) -> dict[str, dict | None]:
    config = run.config
    try:
        results = evaluate_protocol(
            run.raw_model, run.data.val, config.block_size, config.eval_lengths,
            config.eval_tokens, config.batch_size, run.device, run.autocast,
        )  # fmt: skip
    except ValueError:  # a split shorter than the longest window: nothing to measure
        results = dict.fromkeys((f"{k}x" for k in config.eval_lengths), None)
    losses = {k: r and r["loss"] for k, r in results.items()}
    targets = max((r["targets"] for r in results.values() if r), default=0)
    _log(run, {"iter": run.state["iter"], "kind": "protocol", "val_loss": losses,
               "targets": targets})  # fmt: skip
    return results


# %% notebooks/92_trainer.md: The trainer / Logging a run
def _log(run: _Run, record: dict) -> None:
    if run.master:
        try:
            _append(run.out_dir / METRICS, record)
        except OSError as error:
            raise StorageError(
                f"could not append to {run.out_dir / METRICS}: {os_reason(error)}; "
                f"{_kept(run)}"
            ) from None
    run.state["metrics_lines"] += 1


def _evaluate(run: _Run, iteration: int) -> None:
    from ropelib.data.tokenizers import import_optional

    tqdm = import_optional("tqdm", "the trainer's log").tqdm

    config, state = run.config, run.state
    if not run.master:
        state["metrics_lines"] += 1
        return
    losses = evaluate_lengths(
        run.raw_model,
        run.data.val,
        config.block_size,
        config.eval_lengths,
        config.batch_size,
        config.eval_iters,
        run.device,
        run.autocast,
    )
    first = losses[f"{config.eval_lengths[0]}x"]
    if first is not None and (
        state["best_val_loss"] is None or first < state["best_val_loss"]
    ):
        state["best_val_loss"] = first
    state["last_val_loss"] = losses
    _log(run, {"iter": iteration, "kind": "eval", "val_loss": losses})
    shown = " ".join(
        f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in losses.items()
    )
    tqdm.write(f"iter {iteration:>6}: validation loss {shown}")


# %% notebooks/92_trainer.md: The trainer / Logging a run
def _summary(run: _Run, tokens_per_step: int) -> dict[str, Any]:
    config, state = run.config, run.state
    if run.master:
        from ropelib.train.metrics import run_title

        plot = Path(config.out_dir) / "loss.png"
        try:
            plot_metrics(read_metrics(run.out_dir), plot, title=run_title(config))
        except OSError as error:
            raise StorageError(
                f"could not write the plot: {os_reason(error)}"
            ) from None
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
        "n_params": sum(p.numel() for p in run.raw_model.parameters()),
        "device": run.device,
        "world_size": run.world,
        "rank": run.rank,
    }


# %% notebooks/92_trainer.md: The trainer / Faults that stop a run
def _bad_step(run: _Run, done: int, loss: float, grad_norm: float) -> None:
    state, config = run.state, run.config
    state["bad_steps"] += 1
    what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
    if state["bad_steps"] > config.max_bad_steps:
        raise Diverged(
            f"training diverged at step {done}: {what}; {_kept(run)}; lower lr, set "
            f"grad_clip, or skip up to N such steps with --max_bad_steps=N"
        )
    if run.master:
        bad, allowed = state["bad_steps"], config.max_bad_steps
        print(
            f"step {done}: {what}, update skipped ({bad} of {allowed})", file=sys.stderr
        )


def _kept(run: _Run) -> str:
    saved = run.saved_at
    if saved is None:
        return f"no checkpoint was written in {run.out_dir} yet"
    return f"the checkpoint of step {saved} in {run.out_dir} is kept"


def _stop_requested(run: _Run, stop) -> bool:
    signum = torch.tensor([stop.signum or 0], device=run.device)
    if run.world > 1:  # every process stops at the same step
        torch.distributed.all_reduce(signum, op=torch.distributed.ReduceOp.MAX)
    stop.signum = int(signum) or None
    return stop.signum is not None


def _checkpoint(run: _Run, done: int, wall_time_s: float) -> None:
    bad = [
        name for name, p in run.raw_model.named_parameters() if not p.isfinite().all()
    ]
    if bad:  # every process holds the same weights, so all of them stop here
        raise Diverged(
            f"weights became non-finite at step {done} ({bad[0]}); {_kept(run)}"
        )
    if not run.master:
        return
    state, config = run.state, run.config
    state["wall_time_s"] = wall_time_s
    state["scheduler"] = {
        "schedule": config.schedule,
        "next_lr": learning_rate(config, done),
    }
    try:
        save_checkpoint(
            run.out_dir,
            run.raw_model,
            run.optimizer,
            state,
            tokenizer=run.data.tokenizer,
        )
    except OSError as error:
        raise StorageError(
            f"could not write the checkpoint of step {done}: {os_reason(error)}; {_kept(run)}"
        ) from None
    run.saved_at = done


__all__ = [
    "evaluate_lengths",
    "micro_batch",
    "train",
    "train_step",
]
