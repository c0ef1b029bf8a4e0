# generated from notebooks/92_trainer.md by tools/export.py, do not edit

# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
"""Checkpoints that are complete or absent: safetensors plus a JSON manifest, written atomically."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import re
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ropelib.data.tokenizers import import_optional
from ropelib.files import atomic_write
from ropelib.model import ConfigError, GPTConfig
from ropelib.train.config import TrainConfig, model_config

CHECKPOINT = "checkpoint.json"
TOKENIZER = "tokenizer.json"  # beside the weights: a checkpoint decodes its own ids


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
    np.random.set_state(
        (kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached)
    )
    torch_state = np.frombuffer(
        base64.b64decode(states["torch"]), dtype=np.uint8
    ).copy()
    torch.set_rng_state(torch.from_numpy(torch_state))


# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
def save_checkpoint(
    out_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict | None = None,
    *,
    tokenizer=None,
) -> Path:
    """Write model, optimiser, tokenizer and `state` atomically. Defined in *The trainer*."""
    save = import_optional("safetensors.torch", "a checkpoint").save
    out_dir, state = Path(out_dir), {"iter": 0, **(state or {})}
    out_dir.mkdir(parents=True, exist_ok=True)
    gpt = getattr(model, "config", None)  # a GPT's shape: load_model rebuilds it
    described = {"model_config": dataclasses.asdict(gpt)} if is_dataclass(gpt) else {}
    if tokenizer is not None:
        described["tokenizer"] = _save_tokenizer(out_dir, tokenizer, model)
    tensors = {
        f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()
    }
    saved = {"state": {}, "param_groups": []}
    saved = optimizer.state_dict() if optimizer is not None else saved
    for index, slots in saved["state"].items():
        for slot, value in slots.items():
            tensors[f"optimizer.{index}.{slot}"] = (
                torch.as_tensor(value).detach().cpu().clone()
            )
    data = save({k: v.contiguous() for k, v in tensors.items()})
    name = f"checkpoint-{state['iter']:08d}.safetensors"
    atomic_write(out_dir / name, data)
    manifest = {
        **state,
        **described,
        "tensors": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "optimizer_param_groups": saved["param_groups"],
        "random_states": _random_states(),
    }
    atomic_write(out_dir / CHECKPOINT, json.dumps(manifest).encode())
    for old in out_dir.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return out_dir / CHECKPOINT


# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_REQUIRED = {
    "tensors": lambda v: isinstance(v, str) and _TENSOR_NAME.fullmatch(v) is not None,
    "sha256": lambda v: (
        isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) is not None
    ),
    "bytes": _count,
    "iter": _count,
    "optimizer_param_groups": lambda v: (
        isinstance(v, list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in v)
    ),
    "random_states": lambda v: (
        isinstance(v, dict)
        and isinstance(v.get("python"), list)
        and isinstance(v.get("numpy"), list)
        and isinstance(v.get("torch"), str)
    ),
}
_OPTIONAL = {  # what the trainer's own state adds; None where a value may be unknown
    **dict.fromkeys(["metrics_lines", "loss_count", "bad_steps"], _count),
    **dict.fromkeys(["loss_sum", "train_time_s", "wall_time_s"], _number),
    **dict.fromkeys(
        ["last_train_loss", "best_val_loss"], lambda v: v is None or _number(v)
    ),
    **dict.fromkeys(
        ["last_val_loss", "data"], lambda v: v is None or isinstance(v, dict)
    ),
    **dict.fromkeys(
        ["config", "model_config", "scheduler"], lambda v: isinstance(v, dict)
    ),
    "tokenizer": lambda v: (
        isinstance(v, dict)
        and v.get("file") == TOKENIZER
        and isinstance(v.get("sha256"), str)
        and _count(v.get("vocab_size"))
    ),
}
_TENSOR_NAME = re.compile(r"checkpoint-[0-9]{8}\.safetensors")


def _manifest_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"the manifest is a {type(state).__name__}, not an object"
    for name, valid in _REQUIRED.items():
        if name not in state:
            return f"{name} is missing"
        if not valid(state[name]):
            return f"{name} has the wrong type or value: {str(state[name])[:60]!r}"
    for name, valid in _OPTIONAL.items():
        if name in state and not valid(state[name]):
            return f"{name} has the wrong type or value: {str(state[name])[:60]!r}"
    if "config" not in state and "model_config" not in state:
        return "config is missing (and model_config, the model's shape)"
    return None


# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
def load_checkpoint(out_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """Tensors and state of `out_dir`'s checkpoint or None. Defined in the chapter *The trainer*."""
    load = import_optional("safetensors.torch", "a checkpoint").load

    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        return None
    fix = f"delete {Path(out_dir)} or start again with --overwrite=true"
    try:
        state = json.loads(path.read_text())
        problem = _manifest_problem(state)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"is not JSON ({error})"
    if problem:
        raise ConfigError(
            f"checkpoint {path} is corrupted or truncated: {problem}; {fix}"
        )
    tensor_path = Path(out_dir) / state["tensors"]
    if not tensor_path.is_file():
        raise ConfigError(
            f"checkpoint {path} names {tensor_path.name}, which is missing; {fix}"
        )
    if tensor_path.resolve().parent != Path(out_dir).resolve():
        raise ConfigError(f"checkpoint {tensor_path} lies outside {out_dir}; {fix}")
    data = tensor_path.read_bytes()
    if (
        len(data) != state["bytes"]
        or hashlib.sha256(data).hexdigest() != state["sha256"]
    ):
        raise ConfigError(f"checkpoint {tensor_path} is corrupted or truncated; {fix}")
    return load(data), state


# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
def _restore(model, optimizer, tensors: dict[str, torch.Tensor], state: dict) -> None:
    model.load_state_dict(
        {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, slot = key.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict(
        {"state": slots, "param_groups": state["optimizer_param_groups"]}
    )
    _set_random_states(state["random_states"])


def load_model(
    out_dir: str | Path, device: str = "cpu"
) -> tuple[torch.nn.Module, TrainConfig | GPTConfig]:
    """A saved GPT, in eval mode, and its TrainConfig (else GPTConfig). See *The trainer*."""
    from ropelib.model import GPT

    checkpoint = load_checkpoint(out_dir)
    if checkpoint is None:
        raise ConfigError(f"no checkpoint in {out_dir}: train the run first")
    tensors, state = checkpoint
    config = None
    if "config" in state:  # a run of the trainer; fields newer than it take defaults
        fields = TrainConfig.__dataclass_fields__
        config = TrainConfig(
            **{k: v for k, v in state["config"].items() if k in fields}
        )
    try:
        vocab_size = tensors["model.transformer.wte.weight"].shape[0]
        shape = state.get("model_config")
        gpt = GPTConfig(**shape) if shape else model_config(config, vocab_size)
        model = GPT(gpt)
        model.load_state_dict(
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        )
    except (KeyError, RuntimeError, TypeError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        message = f"the checkpoint in {out_dir} does not fit its model: {reason}"
        raise ConfigError(message) from None
    return model.to(device).eval(), config if config is not None else gpt


# %% notebooks/92_trainer.md: The trainer / Checkpoints that are complete or absent
def _save_tokenizer(out_dir: Path, tokenizer, model: torch.nn.Module) -> dict:
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab_size is not None and tokenizer.vocab_size != vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} tokens, the model's vocabulary "
            f"{vocab_size}: save the tokenizer the model was trained with"
        )
    text = tokenizer.to_json().encode()
    atomic_write(out_dir / TOKENIZER, text)
    digest = hashlib.sha256(text).hexdigest()
    return {"file": TOKENIZER, "sha256": digest, "vocab_size": tokenizer.vocab_size}


def load_tokenizer_of(out_dir: str | Path):
    """The tokenizer saved with a checkpoint, or None. Defined in the chapter *The trainer*."""
    from ropelib.data import load_tokenizer

    checkpoint = load_checkpoint(out_dir)
    if checkpoint is None:
        raise ConfigError(f"no checkpoint in {out_dir}: train the run first")
    tensors, state = checkpoint
    saved = state.get("tokenizer")
    if saved is None:  # a checkpoint written before tokenizers were saved with it
        return None
    path = Path(out_dir) / TOKENIZER
    problem = "is missing" if not path.is_file() else None
    if (
        problem is None
        and hashlib.sha256(path.read_bytes()).hexdigest() != saved["sha256"]
    ):
        problem = "differs from the one the manifest records"
    vocab = tensors.get("model.transformer.wte.weight")
    if problem is None and vocab is not None and vocab.shape[0] != saved["vocab_size"]:
        problem = f"has {saved['vocab_size']} tokens, the model {vocab.shape[0]}"
    if problem:
        raise ConfigError(f"the tokenizer of the checkpoint in {out_dir} {problem}")
    return load_tokenizer(path)


def check_tokenization(saved, tokenizer, where: str) -> None:
    """ConfigError unless two tokenizers are one. Defined in the chapter *The trainer*."""
    if saved is not None and saved.to_json() != tokenizer.to_json():
        raise ConfigError(
            f"{where}: the corpus's tokenization ({tokenizer.kind}, {tokenizer.vocab_size} "
            f"tokens) differs from the checkpoint's ({saved.kind}, {saved.vocab_size} "
            "tokens); use the corpus the model was trained on"
        )


__all__ = [
    "check_tokenization",
    "CHECKPOINT",
    "load_checkpoint",
    "load_model",
    "load_tokenizer_of",
    "save_checkpoint",
    "TOKENIZER",
]
