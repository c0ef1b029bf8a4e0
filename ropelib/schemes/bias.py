# generated from notebooks/04_bias.md by tools/export.py, do not edit

# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / The
#    GPT adapters
"""GPT adapters of the logit-bias schemes and truncated RoPE: `alibi`, `t5`, `p-rope`.

Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated RoPE*.
"""

from __future__ import annotations

from torch import Tensor

from ropelib.bias import ALiBi, PartialRoPE, T5RelativeBias
from ropelib.model import GPTConfig, PositionScheme, register_scheme
from ropelib.schemes.rope import RoPEScheme


@register_scheme("alibi")
class ALiBiScheme(PositionScheme):
    """ALiBi's linear bias on the logits, the slopes fixed by the number of heads."""

    def __init__(self, config: GPTConfig, layer: int | None = None) -> None:
        super().__init__(config, layer)
        if layer is not None:
            self.alibi = ALiBi(config.n_head)

    def attention_bias(self, q_positions, k_positions, dtype, device) -> Tensor:
        return self.alibi.bias(q_positions, k_positions, dtype=dtype, device=device)


@register_scheme("t5")
class T5Scheme(PositionScheme):
    """T5's learned bucketed bias (options `num_buckets`, `max_distance`)."""

    def __init__(
        self,
        config: GPTConfig,
        layer: int | None = None,
        num_buckets: int = 32,
        max_distance: int = 128,
    ) -> None:
        super().__init__(config, layer)
        try:
            t5 = T5RelativeBias(
                config.n_head, num_buckets=num_buckets, max_distance=max_distance
            )
        except ValueError as error:
            raise ValueError(f"pe_options: t5: {error}") from None
        if layer is not None:
            self.t5 = t5

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        cls(config, None, **config.pe_options)  # cheap, and checks the options' values

    def attention_bias(self, q_positions, k_positions, dtype, device) -> Tensor:
        return self.t5.bias(q_positions, k_positions).to(device=device, dtype=dtype)


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / The
#    GPT adapters
@register_scheme("p-rope")
class PartialRoPEScheme(RoPEScheme):
    """p-RoPE: RoPE with the lowest frequencies removed (option `keep_fraction`)."""

    def __init__(
        self,
        config: GPTConfig,
        layer: int | None = None,
        keep_fraction: float = 0.75,
        interleaved: bool = True,
    ) -> None:
        super().__init__(config, layer, interleaved=interleaved)
        try:
            rope = PartialRoPE(
                config.head_dim,
                keep_fraction=keep_fraction,
                base=config.rope_base,
                interleaved=interleaved,
            )
        except ValueError as error:
            raise ValueError(f"pe_options: p-rope: {error}") from None
        if layer is not None:
            self.rope = rope

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        cls(config, None, **config.pe_options)


__all__ = [
    "ALiBiScheme",
    "PartialRoPEScheme",
    "T5Scheme",
]
