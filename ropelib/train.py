# generated from notebooks/04_training.md by tools/export.py, do not edit

# %% notebooks/04_training.md: Training / One configuration
"""Training GPT models with pluggable position schemes. Built in notebooks/04_training.md."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import difflib
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCHEDULES = ("cosine", "step")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16")
TOKENIZERS = ("bpe", "char")  # as ropelib.data.TOKENIZERS; checked here before any data is read
MODEL_FIELDS = (
    "n_layer",
    "n_head",
    "n_embd",
    "block_size",
    "pe",
    "dropout",
    "bias",
    "rope_base",
    "pe_options",
)


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defined in notebooks/04_training.md."""

    # model: ropelib.model.GPTConfig (vocab_size comes from the tokenizer)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256
    pe: str = "rope"
    dropout: float = 0.0
    bias: bool = True
    rope_base: float = 10000.0
    pe_options: dict = field(default_factory=dict)
    # data: ropelib.data.prepare_dataset
    corpus: str = "shakespeare"
    tokenizer: str = "bpe"
    vocab_size: int = 4096
    data_dir: str = "data"
    val_fraction: float = 0.1
    # optimisation: one step sees batch_size * grad_accum sequences of block_size tokens
    batch_size: int = 16
    grad_accum: int = 1
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4  # the end of the cosine; the step schedule ignores it
    warmup_iters: int = 100
    schedule: str = "cosine"
    gamma: float = 0.8  # step schedule: lr *= gamma every step_size iterations
    step_size: int = 1000
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0 disables clipping
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    eval_lengths: tuple[int, ...] = (1, 2, 4)  # multiples of block_size
    log_interval: int = 10
    checkpoint_interval: int = 250
    # where and how
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    out_dir: str = "runs/train"
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        hints = typing.get_type_hints(TrainConfig)
        for item in dataclasses.fields(self):
            setattr(self, item.name, _coerce(item.name, hints[item.name], getattr(self, item.name)))
        _validate(self)


# %% notebooks/04_training.md: Training / One configuration
def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"{name} must be a sequence of {args[0].__name__}, got {value!r}")
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise ValueError(f"{name} must have {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(name, args[0], item) for item in value)
    is_bool = isinstance(value, (bool, np.bool_))
    if hint is bool and is_bool:
        return bool(value)
    if hint is int and isinstance(value, (int, np.integer)) and not is_bool:
        return int(value)
    if hint is float and isinstance(value, (int, float, np.number)) and not is_bool:
        return float(value)
    if hint in (str, dict) and isinstance(value, hint):
        return value
    raise ValueError(f"{name} must be of type {hint.__name__}, got {value!r}")


def _require(ok: bool, name: str, accepted: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")


def _validate(config: TrainConfig) -> None:
    c = config
    positive = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size")
    positive += ("grad_accum", "max_iters", "step_size", "eval_interval", "eval_iters")
    for name in positive + ("log_interval", "checkpoint_interval"):
        _require(getattr(c, name) > 0, name, "a positive integer", getattr(c, name))
    _require(c.warmup_iters >= 0, "warmup_iters", "a non-negative integer", c.warmup_iters)
    _require(math.isfinite(c.lr) and c.lr > 0, "lr", "a positive number", c.lr)
    _require(0 <= c.min_lr <= c.lr, "min_lr", f"in [0, lr={c.lr}]", c.min_lr)
    _require(0 < c.gamma <= 1, "gamma", "in (0, 1]", c.gamma)
    _require(c.weight_decay >= 0, "weight_decay", "non-negative", c.weight_decay)
    _require(all(0 <= b < 1 for b in c.betas), "betas", "two numbers in [0, 1)", c.betas)
    _require(c.grad_clip >= 0, "grad_clip", "non-negative (0 disables clipping)", c.grad_clip)
    _require(0 <= c.dropout < 1, "dropout", "in [0, 1)", c.dropout)
    _require(c.rope_base > 0, "rope_base", "a positive number", c.rope_base)
    _require(0 < c.val_fraction < 1, "val_fraction", "in (0, 1)", c.val_fraction)
    accepted = "a non-empty list of distinct positive integers (multiples of block_size)"
    lengths = c.eval_lengths
    distinct_positive = lengths and min(lengths) > 0 and len(set(lengths)) == len(lengths)
    _require(distinct_positive, "eval_lengths", accepted, lengths)
    _require(0 <= c.seed < 2**31, "seed", "an integer in [0, 2**31)", c.seed)
    for name, choices in [("schedule", SCHEDULES), ("device", DEVICES), ("dtype", DTYPES)]:
        _require(
            getattr(c, name) in choices, name, f"one of {', '.join(choices)}", getattr(c, name)
        )
    _require(c.tokenizer in TOKENIZERS, "tokenizer", f"one of {', '.join(TOKENIZERS)}", c.tokenizer)
    if c.tokenizer == "bpe":  # byte-level BPE starts from the 256 byte values
        _require(
            c.vocab_size >= 256, "vocab_size", "at least 256 for tokenizer='bpe'", c.vocab_size
        )
    for name in ("out_dir", "data_dir"):
        path = getattr(c, name)
        usable = bool(path) and (os.path.isdir(path) or not os.path.exists(path))
        _require(usable, name, "a directory path (not an existing file)", path)
    from ropelib.data import CORPORA

    readable = os.path.isfile(c.corpus) and os.access(c.corpus, os.R_OK)
    accepted = f"one of {', '.join(CORPORA)} or the path of a readable text file"
    _require(c.corpus in CORPORA or readable, "corpus", accepted, c.corpus)
    model_config(c, c.vocab_size)  # the model checks its own fields (pe, head_dim, ...)


# %% notebooks/04_training.md: Training / One configuration
def model_config(config: TrainConfig, vocab_size: int):
    """The `GPTConfig` of a run. Defined in notebooks/04_training.md."""
    from ropelib.model import GPTConfig

    fields = {name: getattr(config, name) for name in MODEL_FIELDS}
    return GPTConfig(vocab_size=vocab_size, **fields)


# %% notebooks/04_training.md: Training / Presets
# fmt: off
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": dict(
        n_layer=2, n_head=2, n_embd=32, block_size=32, tokenizer="char", batch_size=8,
        grad_accum=2, max_iters=20, lr=3e-3, min_lr=3e-4, warmup_iters=4, eval_interval=10,
        eval_iters=2, log_interval=1, checkpoint_interval=5, out_dir="runs/cpu-tiny",
    ),
    "cpu-small": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, tokenizer="bpe", vocab_size=2048,
        batch_size=12, max_iters=600, lr=2e-3, min_lr=2e-4, warmup_iters=50,
        eval_interval=100, eval_iters=10, log_interval=10, checkpoint_interval=100,
        out_dir="runs/cpu-small",
    ),
    "crope-paper": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=1024, batch_size=16, max_iters=10_000,
        lr=1e-3, schedule="step", gamma=0.8, step_size=1000, warmup_iters=0,
        weight_decay=0.01, eval_interval=500, eval_iters=50, checkpoint_interval=500,
        out_dir="runs/crope-paper",
    ),
    "tinystories-33m": dict(
        corpus="tinystories", n_layer=4, n_head=16, n_embd=768, block_size=512,
        vocab_size=8192, batch_size=32, max_iters=20_000, lr=5e-4, min_lr=5e-5,
        warmup_iters=1000, eval_interval=1000, eval_iters=50, checkpoint_interval=1000,
        out_dir="runs/tinystories-33m",
    ),
    "gpt2-124m": dict(
        corpus="openwebtext", n_layer=12, n_head=12, n_embd=768, block_size=1024,
        vocab_size=50304, batch_size=12, grad_accum=40, max_iters=600_000, lr=6e-4,
        min_lr=6e-5, warmup_iters=2000, eval_interval=2000, eval_iters=200,
        checkpoint_interval=2000, compile=True, out_dir="runs/gpt2-124m",
    ),
}
# fmt: on


# %% notebooks/04_training.md: Training / Presets
def _parse_value(name: str, hint: Any, text: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        items = [item.strip() for item in text.strip("()[] ").split(",") if item.strip()]
        return tuple(_parse_value(name, args[0], item) for item in items)
    if hint is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--{name} must be true or false, got {text!r}")
    if hint is dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(
                f"--{name} must be a JSON object such as '{{\"key\": 1}}', got {text!r}"
            )
        return value
    if hint in (int, float):
        try:
            number = float(text)
            if hint is int:
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return number
        except (ValueError, OverflowError):
            raise ValueError(f"--{name} must be {hint.__name__}, got {text!r}") from None
    return text


def config_from_args(args: Sequence[str], **defaults: Any) -> TrainConfig:
    """A TrainConfig from `--preset=NAME --key=value ...`. Defined in notebooks/04_training.md."""
    hints = typing.get_type_hints(TrainConfig)
    pairs: list[tuple[str, str | None]] = []
    args = list(args)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--") or arg == "--":
            raise ValueError(f"expected --key=value, got {arg!r}")
        key, has_value, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not has_value and args and not args[0].startswith("--"):
            value, has_value = args.pop(0), True
        pairs.append((key, value if has_value else None))
    overrides = dict(defaults)
    presets = [value for key, value in pairs if key == "preset"]
    if presets:
        if presets[-1] not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {presets[-1]!r}")
        overrides = {**PRESETS[presets[-1]], **overrides}
    for key, value in pairs:
        if key == "preset":
            if value is None:
                raise ValueError("--preset needs a value, e.g. --preset=cpu-small")
            continue
        if key not in hints:
            close = difflib.get_close_matches(key, [*hints, "preset"], n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ValueError(f"unknown option --{key}{hint}; see `python -m ropelib train --help`")
        if value is None:
            if hints[key] is not bool:
                raise ValueError(f"--{key} needs a value: --{key}=VALUE")
            value = "true"
        overrides[key] = _parse_value(key, hints[key], value)
    return TrainConfig(**overrides)


# %% notebooks/04_training.md: Training / The learning-rate schedule
def learning_rate(config: TrainConfig, iteration: int) -> float:
    """The learning rate at `iteration` (0-based). Defined in notebooks/04_training.md."""
    c = config
    if iteration < c.warmup_iters:
        return c.lr * (iteration + 1) / (c.warmup_iters + 1)
    if c.schedule == "step":
        return c.lr * c.gamma ** (iteration // c.step_size)
    progress = min(1.0, (iteration - c.warmup_iters) / max(1, c.max_iters - c.warmup_iters))
    return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (c.lr - c.min_lr)


# %% notebooks/04_training.md: Training / The optimiser
def configure_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW that decays only parameters with dim >= 2. Defined in notebooks/04_training.md."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused or None)


# %% notebooks/04_training.md: Training / Batches that do not depend on how they are computed
def micro_batch(
    tokens: np.ndarray, config: TrainConfig, iteration: int, index: int, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Micro-batch `index` of step `iteration`. Defined in notebooks/04_training.md."""
    from ropelib.data import get_batch

    seed = np.random.SeedSequence([config.seed, iteration, index]).generate_state(1)[0]
    generator = torch.Generator().manual_seed(int(seed))
    return get_batch(tokens, config.batch_size, config.block_size, generator, device=device)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    grad_clip: float = 0.0,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[torch.Tensor, float]:
    """One optimiser step; (mean loss, grad norm). Defined in notebooks/04_training.md."""
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


# %% notebooks/04_training.md: Training / Validation at longer contexts
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
    """Mean validation loss at each multiple of block_size. Defined in notebooks/04_training.md."""
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


# %% notebooks/04_training.md: Training / Checkpoints that are complete or absent
CHECKPOINT = "checkpoint.json"
METRICS = "metrics.jsonl"


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _random_states() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
    }


def _set_random_states(states: dict[str, Any]) -> None:
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch_state = np.frombuffer(base64.b64decode(states["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(torch_state))


def save_checkpoint(
    out_dir: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> Path:
    """Write model, optimiser and `state` atomically. Defined in notebooks/04_training.md."""
    from safetensors.torch import save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    saved = optimizer.state_dict()
    for index, slots in saved["state"].items():
        for slot, value in slots.items():
            tensors[f"optimizer.{index}.{slot}"] = torch.as_tensor(value).detach().cpu().clone()
    data = save({k: v.contiguous() for k, v in tensors.items()})
    name = f"checkpoint-{state['iter']:08d}.safetensors"
    _atomic_write(out_dir / name, data)
    manifest = {
        **state,
        "tensors": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "optimizer_param_groups": saved["param_groups"],
        "random_states": _random_states(),
    }
    _atomic_write(out_dir / CHECKPOINT, json.dumps(manifest).encode())
    for old in out_dir.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return out_dir / CHECKPOINT


def load_checkpoint(out_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """Tensors and state of `out_dir`'s checkpoint, or None. Defined in notebooks/04_training.md."""
    from safetensors.torch import load

    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        return None
    fix = f"delete {Path(out_dir)} to start again"
    try:
        state = json.loads(path.read_text())
        tensor_path = Path(out_dir) / state["tensors"]
        expected = state["sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"checkpoint {path} is corrupted or truncated ({error}); {fix}") from None
    if not tensor_path.exists():
        raise ValueError(f"checkpoint {path} names {tensor_path.name}, which is missing; {fix}")
    data = tensor_path.read_bytes()
    if len(data) != state.get("bytes") or hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"checkpoint {tensor_path} is corrupted or truncated; {fix}")
    return load(data), state


def _restore(model, optimizer, tensors: dict[str, torch.Tensor], state: dict) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, slot = key.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": slots, "param_groups": state["optimizer_param_groups"]})
    _set_random_states(state["random_states"])


def load_model(out_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """The trained GPT of a run's checkpoint, in eval mode, and the run's config.

    Defined in notebooks/04_training.md.
    """
    from ropelib.model import GPT

    checkpoint = load_checkpoint(out_dir)
    if checkpoint is None:
        raise ValueError(f"no checkpoint in {out_dir}: train the run first")
    tensors, state = checkpoint
    saved = {k: v for k, v in state["config"].items() if k in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**saved)
    vocab_size = tensors["model.transformer.wte.weight"].shape[0]
    model = GPT(model_config(config, vocab_size))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model.to(device).eval(), config


# %% notebooks/04_training.md: Training / The loop
def _distributed_env() -> tuple[int, int, int]:
    read = os.environ.get
    return int(read("RANK", 0)), int(read("WORLD_SIZE", 1)), int(read("LOCAL_RANK", 0))


def _device(config: TrainConfig, local_rank: int) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if config.device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{local_rank}"


def _autocast(config: TrainConfig, device: str) -> Callable[[], contextlib.AbstractContextManager]:
    bf16 = config.dtype == "bfloat16" or (
        config.dtype == "auto" and device.startswith("cuda") and torch.cuda.is_bf16_supported()
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


def _reset_metrics(path: Path, keep_lines: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    _atomic_write(path, b"".join(lines[:keep_lines]))


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def train(config: TrainConfig) -> dict[str, Any]:
    """Train a GPT; returns the final metrics. Defined in notebooks/04_training.md."""
    import torch.distributed as dist

    rank, world, local_rank = _distributed_env()
    if config.grad_accum % world:
        raise ValueError(f"grad_accum={config.grad_accum} must be a multiple of WORLD_SIZE={world}")
    device = _device(config, local_rank)
    if world > 1:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        return _train(config, rank, world, device)
    finally:
        if world > 1:
            dist.destroy_process_group()


# %% notebooks/04_training.md: Training / The loop
def _train(config: TrainConfig, rank: int, world: int, device: str) -> dict[str, Any]:
    import torch.distributed as dist
    from tqdm import tqdm

    from ropelib.model import GPT

    master, out_dir = rank == 0, Path(config.out_dir)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 products: ~2x on Ampere and later
        torch.backends.cudnn.allow_tf32 = True
    autocast = _autocast(config, device)
    checkpoint = load_checkpoint(out_dir) if config.resume else None  # checked before the data
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
            for old in [out_dir / CHECKPOINT, *out_dir.glob("checkpoint-*.safetensors")]:
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
            shown = " ".join(f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in losses.items())
            tqdm.write(f"iter {iteration:>6}: validation loss {shown}")
        else:
            state["metrics_lines"] += 1

    if state["iter"] == 0 and checkpoint is None:
        evaluate(0)
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    mine = range(rank, config.grad_accum, world)  # this process's micro-batches of each step
    show = master and config.progress and sys.stderr.isatty()
    bar = tqdm(total=config.max_iters, initial=state["iter"], disable=not show, unit="step")
    session_start = log_start = time.perf_counter()
    wall_before, log_tokens = state["wall_time_s"], 0
    for iteration in range(state["iter"], config.max_iters):
        step_start = time.perf_counter()
        lr = learning_rate(config, iteration)
        batches = [micro_batch(data.train, config, iteration, j, device) for j in mine]
        loss, grad_norm = train_step(model, optimizer, batches, lr, config.grad_clip, autocast)
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
        if master and (done % config.checkpoint_interval == 0 or done == config.max_iters):
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
        "tokens_per_s": state["iter"] * tokens_per_step / max(state["train_time_s"], 1e-9),
        "wall_time_s": state["wall_time_s"],
        "tokens_seen": state["iter"] * tokens_per_step,
        "n_params": sum(p.numel() for p in raw_model.parameters()),
        "device": device,
        "world_size": world,
        "rank": rank,
    }


# %% notebooks/04_training.md: Training / The loop
def read_metrics(out_dir: str | Path) -> list[dict]:
    """The records of `out_dir/metrics.jsonl`. Defined in notebooks/04_training.md."""
    path = Path(out_dir) / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(records: list[dict], path: str | Path | None = None, title: str = ""):
    """Plot training and validation loss against steps. Defined in notebooks/04_training.md."""
    from matplotlib.figure import Figure  # no pyplot: works in any process, with any backend

    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    train = [r for r in records if r["kind"] == "train"]
    axes.plot([r["iter"] for r in train], [r["loss"] for r in train], label="train", lw=1)
    evals = [r for r in records if r["kind"] == "eval"]
    for key in evals[0]["val_loss"] if evals else []:
        points = [(r["iter"], r["val_loss"][key]) for r in evals if r["val_loss"][key] is not None]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=f"validation, context {key}")
    axes.set(xlabel="optimiser step", ylabel="cross-entropy (nats / token)")
    axes.set_title(f"Loss {title}".strip())
    axes.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


# %% notebooks/04_training.md: Training / Experiments
@dataclass
class Experiment:
    """Configurations, each run with several seeds. Defined in notebooks/04_training.md."""

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


def register_custom_experiment(
    name: str, runner: Callable[..., object], table: Callable[[Path], str], seeds: int = 3
) -> None:
    """Register an experiment with its own runner, e.g. images.

    Defined in notebooks/04_training.md.
    """
    description = (runner.__doc__ or "").strip().splitlines()[0] if runner.__doc__ else ""
    EXPERIMENTS[name] = Experiment(name, lambda quick: {}, seeds, description, runner, table)


def register_experiment(name: str, seeds: int = 3) -> Callable:
    """Register `fn(quick) -> {label: config}`. Defined in notebooks/04_training.md."""

    def decorate(fn: Callable[[bool], dict[str, TrainConfig]]) -> Callable:
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        EXPERIMENTS[name] = Experiment(name, fn, seeds, description)
        return fn

    return decorate


def hardware() -> dict[str, Any]:
    """CPU/GPU model, threads and versions. Defined in notebooks/04_training.md."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def git_commit() -> dict[str, Any]:
    """The source commit, and whether the package's own files differ from it ("dirty").

    Edits elsewhere (a chapter's prose, results) do not change what a run computes.
    Defined in notebooks/04_training.md.
    """
    where = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")  # ropelib/ only
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def experiment_dirs(quick: bool = False) -> tuple[Path, Path]:
    """(results dir, checkpoint dir) of experiments. Defined in notebooks/04_training.md."""
    return (
        (Path("runs/quick/results"), Path("runs/quick"))
        if quick
        else (Path("results"), Path("runs"))
    )


def experiment_runs(
    name: str, quick: bool = False, seeds: int | None = None
) -> list[tuple[str, str, TrainConfig]]:
    """The (run name, label, config) of every run. Defined in notebooks/04_training.md."""
    if name not in EXPERIMENTS:
        raise ValueError(
            f"experiment must be one of {', '.join(sorted(EXPERIMENTS))}, got {name!r}"
        )
    experiment = EXPERIMENTS[name]
    seeds = seeds if seeds is not None else (1 if quick else experiment.seeds)
    if seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds}")
    runs = []
    for label, config in experiment.configs(quick).items():
        for seed in range(seeds):
            runs.append((f"{label}-seed{seed}", label, dataclasses.replace(config, seed=seed)))
    return runs


def run_experiment(
    name: str,
    quick: bool = False,
    seeds: int | None = None,
    results_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> Path:
    """Train every run that has no result yet. Defined in notebooks/04_training.md."""
    default_results, default_runs = experiment_dirs(quick)
    results = Path(results_dir or default_results) / name
    checkpoints = Path(runs_dir or default_runs) / name
    results.mkdir(parents=True, exist_ok=True)
    experiment = EXPERIMENTS.get(name)
    if experiment is not None and experiment.runner is not None:
        experiment.runner(
            quick=quick,
            seeds=seeds or experiment.seeds,
            results_dir=results,
            runs_dir=checkpoints.parent,
            data_dir=data_dir,
        )
        return results
    source, machine = git_commit(), hardware()
    for run, label, config in experiment_runs(name, quick, seeds):
        path = results / f"{run}.json"
        if path.exists():
            print(f"{name}/{run}: done already ({path})")
            continue
        with _run_lock(checkpoints / f"{run}.lock") as mine:
            if not mine or path.exists():  # another worker trains it, or just finished it
                print(f"{name}/{run}: {'done already' if mine else 'taken by another worker'}")
                continue
            print(f"{name}/{run}: training")
            _train_and_record(
                name, run, label, config, quick, checkpoints, data_dir, path, source, machine
            )
    return results


@contextlib.contextmanager
def _run_lock(lock: Path):
    """Yield True if this process now owns `lock` (a file holding its pid), else False.

    Several `experiment NAME` processes can share one experiment's runs; a lock left by a
    process that died is taken over. Defined in notebooks/04_training.md.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(lock.read_text() or 0)
                os.kill(owner, 0)  # raises if no such process
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:
                pass  # a live process of another user
            yield False
            return
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)
        return
    yield False


def _train_and_record(
    name, run, label, config, quick, checkpoints, data_dir, path, source, machine
) -> None:
    config = dataclasses.replace(config, out_dir=str(checkpoints / run), resume=True)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))
    metrics = train(config)
    record = {
        "experiment": name,
        "run": run,
        "label": label,
        "seed": config.seed,
        "quick": quick,
        "config": dataclasses.asdict(config),
        "git": source,
        "hardware": machine,
        "wall_time_s": metrics["wall_time_s"],
        "final": metrics,
        "train_loss": metrics["train_loss"],
        "val_loss": metrics["val_loss"],
        "history": read_metrics(config.out_dir),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())


# %% notebooks/04_training.md: Training / Experiments
def load_results(name: str, results_dir: str | Path = "results") -> list[dict]:
    """The result records of an experiment, sorted by run. Defined in notebooks/04_training.md."""
    directory = Path(results_dir)
    directory = directory if directory.name == name else directory / name
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def results_table(name: str, results_dir: str | Path = "results") -> tuple[str, dict]:
    """Markdown table and dict of mean ± std over seeds. Defined in notebooks/04_training.md."""
    records = load_results(name, results_dir)
    labels = list(dict.fromkeys(r["label"] for r in records))
    lengths = list(dict.fromkeys(k for r in records for k in (r["val_loss"] or {})))
    columns = ["train_loss", *(f"val_loss {k}" for k in lengths), "tokens_per_s"]
    summary: dict[str, dict[str, Any]] = {}
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        row: dict[str, Any] = {"seeds": len(runs), "parameters": runs[0]["final"]["n_params"]}
        row["train_loss"] = _mean_std([r["train_loss"] for r in runs])
        for k in lengths:
            values = [r["val_loss"].get(k) for r in runs if r["val_loss"]]
            row[f"val_loss {k}"] = _mean_std([v for v in values if v is not None])
        row["tokens_per_s"] = _mean_std([r["final"]["tokens_per_s"] for r in runs])
        summary[label] = row

    def cell(value: tuple[float, float] | None, digits: int) -> str:
        return "—" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"

    lines = [
        "| configuration | seeds | parameters | " + " | ".join(columns) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for label, row in summary.items():
        cells = [cell(row[c], 0 if c == "tokens_per_s" else 3) for c in columns]
        lines.append(
            f"| {label} | {row['seeds']} | {row['parameters']:,} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines), summary


def difference(summary: dict, a: str, b: str, column: str = "val_loss 1x") -> tuple[float, float]:
    """Mean of `a` minus mean of `b` in a `results_table` summary, and its standard error.

    |difference| < 2 standard errors is what the chapters call "within noise".
    Defined in notebooks/04_training.md.
    """
    (mean_a, std_a), (mean_b, std_b) = summary[a][column], summary[b][column]
    n_a, n_b = summary[a]["seeds"], summary[b]["seeds"]
    return mean_a - mean_b, math.sqrt(std_a**2 / n_a + std_b**2 / n_b)


def plot_results(name: str, results_dir: str | Path = "results", length: str = "1x"):
    """Validation loss curves, mean over seeds. Defined in notebooks/04_training.md."""
    from matplotlib.figure import Figure

    records = load_results(name, results_dir)
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for label in dict.fromkeys(r["label"] for r in records):
        curves: dict[int, list[float]] = {}
        for record in (r for r in records if r["label"] == label):
            for entry in record["history"]:
                if entry["kind"] == "eval" and entry["val_loss"].get(length) is not None:
                    curves.setdefault(entry["iter"], []).append(entry["val_loss"][length])
        if curves:
            steps = sorted(curves)
            means = [sum(curves[s]) / len(curves[s]) for s in steps]
            axes.plot(steps, means, marker="o", label=f"{label} (mean of {len(curves[steps[-1]])})")
    axes.set(xlabel="optimiser step", ylabel=f"validation loss at {length} context (nats / token)")
    axes.set_title(f"Experiment {name}")
    axes.legend()
    figure.tight_layout()

    def png() -> bytes:
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg

        buffer = io.BytesIO()
        FigureCanvasAgg(figure).print_png(buffer)
        return buffer.getvalue()

    figure._repr_png_ = png  # `display(figure)` shows it whether or not pyplot was used before
    return figure


# %% notebooks/04_training.md: Training / Experiments
@register_experiment("pe-basics", seeds=3)
def pe_basics(quick: bool) -> dict[str, TrainConfig]:
    """learned vs rope vs none on Shakespeare at the cpu-small scale."""
    base = dict(PRESETS["cpu-tiny" if quick else "cpu-small"])
    if quick:
        base.update(max_iters=10, eval_interval=5, checkpoint_interval=5)
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in ("learned", "rope", "none")}


__all__ = [
    "CHECKPOINT",
    "config_from_args",
    "configure_optimizer",
    "DEVICES",
    "difference",
    "DTYPES",
    "evaluate_lengths",
    "Experiment",
    "experiment_dirs",
    "experiment_runs",
    "EXPERIMENTS",
    "git_commit",
    "hardware",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "load_results",
    "METRICS",
    "micro_batch",
    "model_config",
    "MODEL_FIELDS",
    "pe_basics",
    "plot_metrics",
    "plot_results",
    "PRESETS",
    "read_metrics",
    "register_custom_experiment",
    "register_experiment",
    "results_table",
    "run_experiment",
    "save_checkpoint",
    "SCHEDULES",
    "TOKENIZERS",
    "train",
    "train_step",
    "TrainConfig",
]
