# generated from notebooks/02_gpt.md by tools/export.py, do not edit

# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The schemes
"""Rotary schemes for the GPT: RoPE and xPos, over `ropelib.rope` and `ropelib.xpos`."""

from __future__ import annotations

from torch import Tensor

from ropelib.model import GPTConfig, PositionScheme, register_scheme
from ropelib.rope import RotaryEmbedding
from ropelib.xpos import XPos, xpos_centre


@register_scheme("rope")
class RoPEScheme(PositionScheme):
    """RoPE on queries and keys.

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    rotary = True

    def __init__(
        self, config: GPTConfig, layer: int | None = None, interleaved: bool = True
    ) -> None:
        super().__init__(config, layer)
        self.logit_scale = 1.0  # multiplies q·k; context extension (YaRN) sets it
        if layer is not None:
            self.rope = RotaryEmbedding(
                config.head_dim, base=config.rope_base, interleaved=interleaved
            )

    def rotate(self, q, k, positions, x, state):
        q, k = self.rope.rotate_queries_and_keys(q, k, positions)
        return (q * self.logit_scale if self.logit_scale != 1.0 else q), k


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
@register_scheme("xpos")
class XPosScheme(RoPEScheme):
    """xPos on queries and keys (options `gamma`, `scale_base`, `interleaved`).

    Defined in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(
        self,
        config: GPTConfig,
        layer: int | None = None,
        gamma: float = 0.4,
        scale_base: float = 512.0,
        interleaved: bool = True,
    ) -> None:
        super().__init__(config, layer, interleaved=interleaved)
        try:
            xpos = XPos(
                config.head_dim,
                gamma=gamma,
                scale_base=scale_base,
                base=config.rope_base,
                interleaved=interleaved,
            )
        except ValueError as error:
            raise ValueError(f"pe_options: xpos: {error}") from None
        if layer is not None:
            self.xpos = xpos
            # one RotaryEmbedding: context extension edits its angles
            self.rope = xpos.rope

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        cls(config, None, **config.pe_options)  # cheap, and checks the options' values

    def rotate(self, q: Tensor, k: Tensor, positions: Tensor, x, state) -> tuple:
        centre = None
        if state is not None:  # a KV cache holds scaled keys: one centre for every step
            centre = state.setdefault("xpos_centre", xpos_centre(positions))
        q, k = self.xpos.rotate_queries_and_keys(q, k, positions, centre=centre)
        return (q * self.logit_scale if self.logit_scale != 1.0 else q), k


__all__ = [
    "RoPEScheme",
    "XPosScheme",
]
