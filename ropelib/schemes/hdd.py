# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / HDD-RoPE in the GPT
"""HDD-RoPE in the GPT. Chapter *HDD-RoPE: data-dependent rotations*."""

from __future__ import annotations

from torch import Tensor

from ropelib.hdd import HDDRoPE, check_hdd_options
from ropelib.model import GPTConfig, PositionScheme, register_scheme


@register_scheme("hdd")
class HDDScheme(PositionScheme):
    """`pe="hdd"`. Chapter *HDD-RoPE: data-dependent rotations*."""

    rotary = True

    def __init__(
        self,
        config: GPTConfig,
        layer: int | None = None,
        block_dim: int = 4,
        map: str = "exp",
    ) -> None:
        super().__init__(config, layer)
        if layer is not None:  # one per attention layer
            shape = dict(
                n_heads=config.n_head, d_model=config.n_embd, base=config.rope_base
            )
            self.hdd = HDDRoPE(config.head_dim, block_dim=block_dim, map=map, **shape)
            self.hdd.increments.own_init = (
                True  # GPT's init leaves it: it starts as RoPE
            )

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        options = config.pe_options
        if "block_size" in options:
            raise ValueError(
                "pe_options: hdd's rotation block is block_dim (block_size is the "
                f"context length), got block_size={options['block_size']!r}"
            )
        super().check_config(config)
        shape = dict(
            n_heads=config.n_head, d_model=config.n_embd, base=config.rope_base
        )
        options = {key: options[key] for key in ("block_dim", "map") if key in options}
        try:
            check_hdd_options(config.head_dim, **shape, **{"block_dim": 4, **options})
        except ValueError as error:
            raise ValueError(f"pe_options: {error}") from None

    def rotate(self, q: Tensor, k: Tensor, positions, x: Tensor, state: dict | None):
        past = None if state is None else state.get("hdd")
        q, k, present = self.hdd.rotate_queries_and_keys(q, k, x, past)
        if state is not None:
            state["hdd"] = present
        return q, k

    def no_weight_decay(self) -> set[str]:
        if self.layer is None:
            return set()
        return {f"hdd.{name}" for name in self.hdd.no_weight_decay()}


__all__ = [
    "HDDScheme",
]
