# generated from notebooks/02_gpt.md by tools/export.py, do not edit

# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The schemes
"""Rotary schemes for the GPT: RoPE and xPos, over `ropelib.rope` and `ropelib.xpos`."""

from __future__ import annotations

import torch
from torch import Tensor

from ropelib.model import GPTConfig, PositionScheme, register_scheme
from ropelib.rope import RotaryEmbedding
from ropelib.scaling import (
    attention_factor_to_logit_scale,
    scaled_frequencies,
    scaling_parameters,
)
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
            if config.rope_scaling:  # checked by check_config
                self.set_rope_scaling(**config.rope_scaling, seq_len=config.block_size)

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        if config.rope_scaling:
            check_rope_scaling(config.rope_scaling, config.head_dim, config.rope_base)

    def set_rope_scaling(
        self, rope_type: str, *, seq_len: int | None = None, **parameters
    ) -> None:
        """Give this layer the frequencies and attention factor of `rope_type`."""
        rotary_dim = self.rope.rotary_dim
        with torch.device("cpu"):  # real frequencies, for a model built on "meta" too
            frequencies, attention_factor = scaled_frequencies(
                rope_type, rotary_dim, base=self.config.rope_base, seq_len=seq_len,
                **parameters,
            )  # fmt: skip
        if frequencies.shape != self.rope.frequencies.shape:
            raise ValueError(
                f"partial_rotary_factor: this layer rotates all {rotary_dim} channels "
                f"of each head, {rope_type!r} gave {len(frequencies)} of its "
                f"{rotary_dim // 2} frequencies"
            )
        self.rope.frequencies = frequencies
        self.rope._cache.clear()
        self.logit_scale = attention_factor_to_logit_scale(attention_factor)

    def rotate(self, q, k, positions, x, state):
        q, k = self.rope.rotate_queries_and_keys(q, k, positions)
        return (q * self.logit_scale if self.logit_scale != 1.0 else q), k


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / The schemes
def check_rope_scaling(rope_scaling: dict, head_dim: int, base: float) -> None:
    """Raise ValueError, naming `rope_scaling`, unless it is a usable rope type."""
    options = dict(rope_scaling)
    rope_type = options.pop("rope_type", None)
    if not isinstance(rope_type, str):
        raise ValueError(
            f"rope_scaling needs a 'rope_type' such as 'yarn', got {rope_scaling!r}"
        )
    try:
        takes = scaling_parameters(rope_type)
        if "original_max_position_embeddings" in takes:
            if "original_max_position_embeddings" not in options:
                raise ValueError(
                    f"{rope_type!r} needs original_max_position_embeddings, the context "
                    f"the model was trained at (block_size is the context of this run)"
                )
        with torch.device("cpu"):
            scaled_frequencies(rope_type, head_dim, base=base, **options)
    except ValueError as error:
        raise ValueError(f"rope_scaling: {' '.join(str(error).split())}") from None


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
    "check_rope_scaling",
    "RoPEScheme",
    "XPosScheme",
]
