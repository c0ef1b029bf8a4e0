# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The learning-rate schedule
"""The learning-rate schedule and the AdamW optimiser of a training run."""

from __future__ import annotations

import math

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
def configure_optimizer(
    model: torch.nn.Module, config: TrainConfig
) -> torch.optim.AdamW:
    """AdamW that decays only parameters with dim >= 2. Defined in the chapter *Training*."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for p in parameters if p.dim() >= 2],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas, fused=fused or None
    )


__all__ = [
    "configure_optimizer",
    "learning_rate",
]
