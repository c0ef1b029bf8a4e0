# generated from notebooks/02_gpt.md by tools/export.py, do not edit

# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The schemes
"""Absolute positions for the GPT: GPT-2's learned table and the sinusoidal one."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ropelib.model import GPTConfig, PositionScheme, register_scheme
from ropelib.rope import rope_frequencies


@register_scheme("learned")
class LearnedPositions(PositionScheme):
    """GPT-2's learned absolute position embedding (`block_size` rows).

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(self, config: GPTConfig, layer: int | None = None) -> None:
        super().__init__(config, layer)
        if layer is None:
            self.wpe = nn.Embedding(config.block_size, config.n_embd)

    @property
    def max_length(self) -> int:
        return self.config.block_size

    def embed(self, h: Tensor, positions: Tensor) -> Tensor:
        return h + self.wpe(positions)


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The schemes
def sinusoidal_table(positions: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """Vaswani et al.'s `[T, dim]` table, sin at even and cos at odd channels (float32).

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """
    frequencies = rope_frequencies(dim, base).to(positions.device)
    angles = positions.double()[:, None] * frequencies
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2).float()


@register_scheme("sinusoidal")
class SinusoidalPositions(PositionScheme):
    """The fixed sinusoidal absolute embedding of the original transformer.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        if config.n_embd % 2:
            raise ValueError(
                f"pe='sinusoidal' needs an even n_embd, got {config.n_embd}"
            )

    def embed(self, h: Tensor, positions: Tensor) -> Tensor:
        table = sinusoidal_table(positions, h.shape[-1]).to(h.dtype)
        return h * math.sqrt(h.shape[-1]) + table


__all__ = [
    "LearnedPositions",
    "sinusoidal_table",
    "SinusoidalPositions",
]
