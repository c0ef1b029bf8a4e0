# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The learning-rate schedule
"""The learning-rate schedule and the AdamW optimiser of a training run."""

from __future__ import annotations

import math
from typing import Any

import torch

from ropelib.train.config import TrainConfig


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """The learning rate at `iteration` (0-based). Defined in the chapter *Training*."""
    c = config
    if iteration < c.warmup_iters:
        return c.lr * (iteration + 1) / (c.warmup_iters + 1)
    if c.schedule == "step":
        return c.lr * c.gamma ** (iteration // c.step_size)
    progress = min(
        1.0, (iteration - c.warmup_iters) / max(1, c.max_iters - c.warmup_iters)
    )
    return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (c.lr - c.min_lr)


# %% notebooks/03_training.md: Training / The optimiser
def parameter_groups(
    model: torch.nn.Module, weight_decay: float
) -> list[dict[str, Any]]:
    """The decay and no-decay groups of AdamW. Defined in the chapter *Training*."""
    exempt: set[int] = set()
    for prefix, module in model.named_modules():
        listed = getattr(module, "no_weight_decay", None)
        if not callable(listed):
            continue
        for name in listed():
            try:
                exempt.add(id(module.get_parameter(name)))
            except AttributeError:
                owner = prefix or type(model).__name__
                message = f"{owner}.no_weight_decay() names {name!r}, which is no parameter of it"
                raise ValueError(message) from None
    parameters = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in parameters if p.dim() >= 2 and id(p) not in exempt]
    keep = [p for p in parameters if p.dim() < 2 or id(p) in exempt]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]


def configure_optimizer(
    model: torch.nn.Module, config: TrainConfig
) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`. Defined in the chapter *Training*."""
    groups = parameter_groups(model, config.weight_decay)
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas, fused=fused or None
    )


__all__ = [
    "configure_optimizer",
    "learning_rate",
    "parameter_groups",
]
