# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / One configuration
"""The configuration of a training run: one dataclass, its checks, presets and `--key=value`."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import math
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

import ropelib.schemes  # noqa: F401  (registers the book's position schemes, which `pe` names)
from ropelib.model import ConfigError

SCHEDULES = ("cosine", "step")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16")
TOKENIZERS = (
    "bpe",
    "char",
)  # as ropelib.data.TOKENIZERS; checked here before any data is read
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
    "rope_scaling",
)


# %% notebooks/92_trainer.md: The trainer / One configuration
@dataclass
class TrainConfig:
    """Everything a training run depends on. Defined in the chapter *The trainer*."""

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
    rope_scaling: dict = field(default_factory=dict)  # {"rope_type": ..., **parameters}
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
    max_bad_steps: int = 0  # non-finite steps to skip before the run stops
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    eval_lengths: tuple[int, ...] = (1, 2, 4)  # multiples of block_size
    eval_tokens: int = 250_000  # target tokens the final evaluation scores, at most
    log_interval: int = 10
    checkpoint_interval: int = 250
    # where and how
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    out_dir: str = "runs/train"
    resume: bool = False  # continue the run in out_dir from its checkpoint
    overwrite: bool = False  # a fresh run may replace the run in out_dir
    init_from: str = ""  # a run's out_dir whose weights start this one: a fine-tune
    progress: bool = True
    ddp_timeout_s: float = 600.0  # how long a collective waits for a stalled process

    def __post_init__(self):
        hints = typing.get_type_hints(TrainConfig)
        for item in dataclasses.fields(self):
            value = _coerce(item.name, hints[item.name], getattr(self, item.name))
            setattr(self, item.name, value)
        _validate(self)


# %% notebooks/92_trainer.md: The trainer / One configuration
def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise ConfigError(
                f"{name} must be a sequence of {args[0].__name__}, got {value!r}"
            )
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(
                f"{name} must have {len(args)} values, got {len(value)}: {value!r}"
            )
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
    raise ConfigError(f"{name} must be of type {hint.__name__}, got {value!r}")


def _require(ok: bool, name: str, accepted: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {accepted}, got {value!r}")


# %% notebooks/92_trainer.md: The trainer / One configuration
def _validate(config: TrainConfig) -> None:
    c = config
    _check_limits(c)
    positive = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size")
    positive += ("grad_accum", "max_iters", "step_size", "eval_interval", "eval_iters")
    for name in positive + ("log_interval", "checkpoint_interval", "eval_tokens"):
        _require(getattr(c, name) > 0, name, "a positive integer", getattr(c, name))
    _require(
        c.warmup_iters >= 0, "warmup_iters", "a non-negative integer", c.warmup_iters
    )
    _require(math.isfinite(c.lr) and c.lr > 0, "lr", "a positive number", c.lr)
    _require(0 <= c.min_lr <= c.lr, "min_lr", f"in [0, lr={c.lr}]", c.min_lr)
    _require(0 < c.gamma <= 1, "gamma", "in (0, 1]", c.gamma)
    _require(c.weight_decay >= 0, "weight_decay", "non-negative", c.weight_decay)
    _require(
        all(0 <= b < 1 for b in c.betas), "betas", "two numbers in [0, 1)", c.betas
    )
    _require(
        c.grad_clip >= 0, "grad_clip", "non-negative (0 disables clipping)", c.grad_clip
    )
    _require(0 <= c.dropout < 1, "dropout", "in [0, 1)", c.dropout)
    _require(c.rope_base > 0, "rope_base", "a positive number", c.rope_base)
    same = c.init_from and Path(c.init_from).resolve() == Path(c.out_dir).resolve()
    _require(not same, "init_from", "another run's out_dir", c.init_from)
    _require(0 < c.val_fraction < 1, "val_fraction", "in (0, 1)", c.val_fraction)
    accepted = (
        "a non-empty list of distinct positive integers (multiples of block_size)"
    )
    lengths = c.eval_lengths
    distinct_positive = (
        lengths and min(lengths) > 0 and len(set(lengths)) == len(lengths)
    )
    _require(distinct_positive, "eval_lengths", accepted, lengths)
    _require(0 <= c.seed < 2**31, "seed", "an integer in [0, 2**31)", c.seed)
    for name, choices in [
        ("schedule", SCHEDULES),
        ("device", DEVICES),
        ("dtype", DTYPES),
    ]:
        value = getattr(c, name)
        _require(value in choices, name, f"one of {', '.join(choices)}", value)
    _require(
        c.tokenizer in TOKENIZERS,
        "tokenizer",
        f"one of {', '.join(TOKENIZERS)}",
        c.tokenizer,
    )
    if c.tokenizer == "bpe":  # byte-level BPE starts from the 256 byte values
        accepted = "at least 256 for tokenizer='bpe'"
        _require(c.vocab_size >= 256, "vocab_size", accepted, c.vocab_size)
    _check_paths(c)
    from ropelib.data import CORPORA

    readable = os.path.isfile(c.corpus) and os.access(c.corpus, os.R_OK)
    accepted = f"one of {', '.join(CORPORA)} or the path of a readable text file"
    _require(c.corpus in CORPORA or readable, "corpus", accepted, c.corpus)
    _check_model(c)
    _check_extras(c)


# %% notebooks/92_trainer.md: The trainer / One configuration
# fmt: off
LIMITS: dict[str, int] = {
    "n_layer": 1024, "n_head": 1024, "n_embd": 65536, "block_size": 2**20,
    "vocab_size": 2**20, "batch_size": 2**16, "grad_accum": 2**16, "max_iters": 10**9,
    "warmup_iters": 10**9, "step_size": 10**9, "eval_interval": 10**9, "eval_iters": 10**6,
    "log_interval": 10**9, "checkpoint_interval": 10**9,
}
# fmt: on
MAX_EVAL_MULTIPLE = 1024  # eval_lengths are multiples of block_size


def _check_limits(config: TrainConfig) -> None:
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{item.name} must be a finite number, got {value!r}")
    for name, limit in LIMITS.items():
        value = getattr(config, name)
        _require(value <= limit, name, f"at most {limit:,} (a sane limit)", value)
    bad, accepted = config.max_bad_steps, f"in [0, max_iters={config.max_iters}]"
    if config.max_iters > 0:  # else max_iters itself is the error, reported after this
        _require(0 <= bad <= config.max_iters, "max_bad_steps", accepted, bad)
    timeout = config.ddp_timeout_s
    _require(timeout > 0, "ddp_timeout_s", "a positive number of seconds", timeout)
    longest = max(config.eval_lengths, default=0)
    accepted = f"multiples of block_size of at most {MAX_EVAL_MULTIPLE}"
    _require(
        longest <= MAX_EVAL_MULTIPLE, "eval_lengths", accepted, config.eval_lengths
    )


def _check_paths(config: TrainConfig) -> None:
    for name in ("out_dir", "data_dir"):
        path = getattr(config, name)
        _require(bool(path), name, "a directory path", path)
        try:
            Path(path).resolve()  # a loop of symbolic links fails here
            parts = [Path(path), *Path(path).parents]
            blocked = next((p for p in parts if p.exists() and not p.is_dir()), None)
            too_long = any(len(part.encode()) > 255 for part in Path(path).parts)
        except (OSError, RuntimeError) as error:
            raise ConfigError(f"{name}={path!r} cannot be used: {error}") from None
        if blocked is not None:
            what = (
                "is"
                if blocked == Path(path)
                else f"lies under {str(blocked)!r}, which is"
            )
            raise ConfigError(f"{name}={path!r} {what} a file, not a directory")
        if too_long or len(os.fsencode(os.path.abspath(path))) >= 4096:
            raise ConfigError(f"{name}={path!r} is longer than the file system allows")


# %% notebooks/92_trainer.md: The trainer / One configuration
def model_config(config: TrainConfig, vocab_size: int):
    """The `GPTConfig` of a run. Defined in the chapter *The trainer*."""
    from ropelib.model import GPTConfig

    fields = {name: getattr(config, name) for name in MODEL_FIELDS}
    return GPTConfig(vocab_size=vocab_size, **fields)


def _check_model(config: TrainConfig) -> None:
    # The model checks its fields (pe, head_dim, ...); building the scheme, for the model and
    # for one layer, checks what only its constructor can (the values and types of
    # pe_options). It is built on the meta device, which allocates nothing, and the random
    # state is restored, so that checking a configuration never changes a run.
    try:
        gpt = model_config(config, config.vocab_size)
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            for layer in (None, 0):
                gpt.build_scheme(layer)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:  # a scheme that rejects its options
        raise ConfigError(f"pe_options: {' '.join(str(error).split())}") from error


# %% notebooks/92_trainer.md: The trainer / Presets
# fmt: off
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-tiny": dict(
        n_layer=2, n_head=2, n_embd=32, block_size=32, tokenizer="char", batch_size=8,
        grad_accum=2, max_iters=20, lr=3e-3, min_lr=3e-4, warmup_iters=4, eval_interval=10,
        eval_iters=2, eval_tokens=4096, log_interval=1, checkpoint_interval=5,
        out_dir="runs/cpu-tiny",
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


# %% notebooks/92_trainer.md: The trainer / `--key=value` overrides
def _parse_value(name: str, hint: Any, text: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        items = [
            item.strip() for item in text.strip("()[] ").split(",") if item.strip()
        ]
        return tuple(_parse_value(name, args[0], item) for item in items)
    if hint is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--{name} must be true or false, got {text!r}")
    if hint is dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            example = "'{\"key\": 1}'"
            raise ConfigError(
                f"--{name} must be a JSON object such as {example}, got {text!r}"
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
            raise ConfigError(
                f"--{name} must be {hint.__name__}, got {text!r}"
            ) from None
    return text


# %% notebooks/92_trainer.md: The trainer / `--key=value` overrides
def config_from_args(args: Sequence[str], **defaults: Any) -> TrainConfig:
    """A TrainConfig from `--preset=NAME --key=value ...`. Defined in the chapter *The trainer*."""
    hints = typing.get_type_hints(TrainConfig)
    pairs: list[tuple[str, str | None]] = []
    args = list(args)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"expected --key=value, got {arg!r}")
        key, has_value, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not has_value and args and not args[0].startswith("--"):
            value, has_value = args.pop(0), True
        pairs.append((key, value if has_value else None))
    overrides, from_file = dict(defaults), {}
    for key, value in pairs:  # a --config file: below the line's own --key=value
        if key == "config":
            if value is None:
                raise ConfigError("--config needs a file: --config=run.toml")
            from_file = read_config_file(value)
    presets = [value for key, value in pairs if key == "preset"]
    presets = presets or ([from_file["preset"]] if "preset" in from_file else [])
    overrides.update({k: v for k, v in from_file.items() if k != "preset"})
    if presets:
        if presets[-1] not in PRESETS:
            raise ConfigError(
                f"preset must be one of {', '.join(PRESETS)}, got {presets[-1]!r}"
            )
        overrides = {**PRESETS[presets[-1]], **overrides}
    for key, value in pairs:
        if key == "config":
            continue
        if key == "preset":
            if value is None:
                raise ConfigError("--preset needs a value, e.g. --preset=cpu-small")
            continue
        if key not in hints:
            close = difflib.get_close_matches(key, [*hints, "preset"], n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ConfigError(
                f"unknown option --{key}{hint}; see `python -m ropelib train --help`"
            )
        if value is None:
            if hints[key] is not bool:
                raise ConfigError(f"--{key} needs a value: --{key}=VALUE")
            value = "true"
        overrides[key] = _parse_value(key, hints[key], value)
    return TrainConfig(**overrides)


# %% notebooks/92_trainer.md: The trainer / `--key=value` overrides
def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options in a TOML or JSON file. Defined in the chapter *The trainer*."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            values = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ConfigError(f"--config={str(path)!r} cannot be read: {reason}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config={str(path)!r} must hold an object of options")
    keys = [*typing.get_type_hints(TrainConfig), "preset"]
    for key in values:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"--config={str(path)!r}: unknown option {key!r}{hint}")
    if not isinstance(values.get("preset", ""), str):
        raise ConfigError(f"--config={str(path)!r}: preset must be a preset's name")
    return values


# Help for `python -m ropelib train --help`: every field in one of four groups.
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "model": MODEL_FIELDS,
    "data": ("corpus", "tokenizer", "vocab_size", "data_dir", "val_fraction"),
    "optimisation": (
        "batch_size",
        "grad_accum",
        "max_iters",
        "lr",
        "min_lr",
        "warmup_iters",
        "schedule",
        "gamma",
        "step_size",
        "weight_decay",
        "betas",
        "grad_clip",
        "max_bad_steps",
    ),  # fmt: skip
}


def option_groups() -> dict[str, list[str]]:
    """The fields of TrainConfig by group. Defined in the chapter *The trainer*."""
    named = {name for names in OPTION_GROUPS.values() for name in names}
    rest = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in named]
    return {**{k: list(v) for k, v in OPTION_GROUPS.items()}, "run": rest}


# %% notebooks/92_trainer.md: The trainer / `--key=value` overrides
def _check_extras(config: TrainConfig) -> None:
    needed = ["safetensors", "tqdm", "matplotlib"]
    needed += ["tokenizers"] if config.tokenizer == "bpe" else []
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        from ropelib.data.tokenizers import MissingExtra

        raise MissingExtra(
            f"training needs {', '.join(missing)}: pip install 'ropelib[train]'",
            name=missing[0],
        )


def preset_of(config: TrainConfig) -> tuple[str | None, list[str]]:
    """The preset `config` is closest to and the fields it changes. See *The trainer*."""
    best: tuple[str | None, list[str]] = (None, [])
    for name, values in PRESETS.items():
        changed = [
            k for k, v in values.items() if k != "out_dir" and getattr(config, k) != v
        ]
        fits = len(changed) <= len(values) // 3  # most of the preset is there
        if fits and (best[0] is None or len(changed) < len(best[1])):
            best = (name, changed)
    return best


# %% notebooks/92_trainer.md: The trainer / The size of a run
def estimate_memory(config: TrainConfig, vocab_size: int) -> dict[str, int]:
    """The least parameters and bytes a run needs. Defined in the chapter *The trainer*."""
    C, L, T = config.n_embd, config.n_layer, config.block_size
    parameters = vocab_size * C + L * 12 * C * C  # embedding (tied) + attention + MLP
    tokens = max(config.batch_size * T, max(config.eval_lengths) * T)
    return {
        "parameters": parameters,
        "model_bytes": 16 * parameters,  # fp32 weight, gradient, two AdamW moments
        "activation_bytes": 4 * tokens * (16 * C * L + 2 * vocab_size),
    }


__all__ = [
    "config_from_args",
    "DEVICES",
    "DTYPES",
    "estimate_memory",
    "LIMITS",
    "MAX_EVAL_MULTIPLE",
    "model_config",
    "MODEL_FIELDS",
    "OPTION_GROUPS",
    "option_groups",
    "preset_of",
    "PRESETS",
    "read_config_file",
    "SCHEDULES",
    "TOKENIZERS",
    "TrainConfig",
]
