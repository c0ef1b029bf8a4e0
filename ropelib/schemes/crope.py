# generated from notebooks/05_crope.md by tools/export.py, do not edit

# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / The GPT
#    adapter
"""The GPT adapter of CRoPE: `pe="crope"`, RoPE on complex-linear q, k and v."""

from __future__ import annotations

from torch import nn

from ropelib.crope import ComplexQKV
from ropelib.model import GPTConfig, register_scheme
from ropelib.schemes.rope import RoPEScheme


@register_scheme("crope")
class CRoPEScheme(RoPEScheme):
    """RoPE with complex-linear query, key and value projections.

    Derived in the chapter *CRoPE: queries, keys and values as complex-linear maps*.
    """

    def __init__(
        self, config: GPTConfig, layer: int | None = None, interleaved: bool = True
    ) -> None:
        super().__init__(config, layer, interleaved=interleaved)
        self.interleaved = interleaved

    def projection(self, config: GPTConfig) -> nn.Module:
        return ComplexQKV(
            config.n_embd,
            bias=config.bias,
            interleaved=self.interleaved,
            head_dim=config.head_dim,
        )


__all__ = [
    "CRoPEScheme",
]
