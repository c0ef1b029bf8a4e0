# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / RoVE:
#    rotary value embeddings
"""RoVE: rotary value embeddings. Derived in notebooks/09_long_context.md."""

from __future__ import annotations

from torch import Tensor

from ropelib.model import GPTConfig, PositionScheme, RoPE, XPos, register_scheme
from ropelib.rope import RotaryEmbedding
from ropelib.train import PRESETS, TrainConfig, register_experiment


def with_rotary_values(scheme: type[PositionScheme]) -> type[PositionScheme]:
    """`scheme` with values rotated to their positions and outputs rotated back (RoVE)."""
    if not scheme.rotary:
        raise ValueError(f"RoVE rotates values in pairs: {scheme.__name__} is not a rotary scheme")

    class WithRotaryValues(scheme):
        def __init__(self, config: GPTConfig, layer: int | None = None, **options) -> None:
            super().__init__(config, layer, **options)
            if layer is not None:
                self.value_rope = RotaryEmbedding(config.head_dim, base=config.rope_base)

        def values(self, v: Tensor, positions: Tensor) -> Tensor:
            return self.value_rope(super().values(v, positions), positions)

        def output(self, y: Tensor, positions: Tensor) -> Tensor:
            return super().output(self.value_rope(y, -positions), positions)  # R(-i) y

    WithRotaryValues.__name__ = WithRotaryValues.__qualname__ = f"RoVE{scheme.__name__}"
    return WithRotaryValues


RoVE = register_scheme("rove")(with_rotary_values(RoPE))
RoVEXPos = register_scheme("rove-xpos")(with_rotary_values(XPos))


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / RoVE:
#    rotary value embeddings
@register_experiment("rove", seeds=3)
def rove_experiment(quick: bool) -> dict[str, TrainConfig]:
    """RoVE against RoPE, and RoVE on xPos against xPos, on Shakespeare, cpu-small scale."""
    base = (
        dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3) if quick else PRESETS["cpu-small"]
    )
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in ("rope", "rove", "xpos", "rove-xpos")}


__all__ = [
    "RoVE",
    "rove_experiment",
    "RoVEXPos",
    "with_rotary_values",
]
