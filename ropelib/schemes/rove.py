# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / The GPT
#    adapters
"""The GPT adapters of RoVE: `rove` and `rove-xpos`.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import inspect

from torch import Tensor

from ropelib.model import register_scheme
from ropelib.rove import RotaryValues
from ropelib.schemes.rope import RoPEScheme, XPosScheme


def with_rotary_values(scheme: type[RoPEScheme], name: str) -> type[RoPEScheme]:
    """`scheme`, a RoPE-family GPT scheme, with RoVE's value and output rotations added.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    if not (isinstance(scheme, type) and issubclass(scheme, RoPEScheme)):
        name = getattr(scheme, "__name__", repr(scheme))
        raise ValueError(
            f"scheme must be a RoPE-family (rotary) scheme class, got {name}"
        )

    class WithRotaryValues(scheme):
        def __init__(self, config, layer=None, **options) -> None:
            super().__init__(config, layer, **options)
            if layer is not None:
                self.rove = RotaryValues(config.head_dim, base=config.rope_base)
                self.rove.rotary = self.rope  # the keys' rotation, shared

        def values(self, v: Tensor, positions: Tensor) -> Tensor:
            return self.rove.rotate_values(super().values(v, positions), positions)

        def output(self, y: Tensor, positions: Tensor) -> Tensor:
            return super().output(self.rove.unrotate_output(y, positions), positions)

    WithRotaryValues.__init__.__signature__ = inspect.signature(scheme.__init__)
    WithRotaryValues.__name__ = WithRotaryValues.__qualname__ = name
    return WithRotaryValues


RoVEScheme = register_scheme("rove")(with_rotary_values(RoPEScheme, "RoVEScheme"))
RoVEXPosScheme = register_scheme("rove-xpos")(
    with_rotary_values(XPosScheme, "RoVEXPosScheme")
)


__all__ = [
    "RoVEScheme",
    "RoVEXPosScheme",
    "with_rotary_values",
]
