# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / The
#    standalone module
"""RoVE, rotary value embeddings.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ropelib.rope import RotaryEmbedding

LAYOUTS = ("bhtd", "bthd")


def _as_bhtd(name: str, x: object, head_dim: int, layout: str) -> Tensor:
    """`x` checked (float, rank 4, `head_dim` channels last) and as `[B, H, T, D]`."""
    axes = "[B, H, T, D]" if layout == "bhtd" else "[B, T, H, D]"
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a floating-point tensor {axes} (layout {layout!r}), "
            f"got {got}"
        )
    if x.shape[-1] != head_dim:
        raise ValueError(
            f"{name} must have head_dim = {head_dim} channels last, got shape "
            f"{tuple(x.shape)}"
        )
    return x if layout == "bhtd" else x.transpose(1, 2)


def _check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    return offset


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / The
#    standalone module
class RotaryValues(nn.Module):
    """RoVE: RoPE on queries and keys, values rotated by R(j), outputs back by R(-i).

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """

    def __init__(
        self,
        head_dim: int,
        *,
        base: float = 10000.0,
        interleaved: bool = True,
        layout: str = "bhtd",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.head_dim, self.layout = head_dim, layout
        # one rotation for q, k, v and y: new frequencies move all of them together
        self.rotary = RotaryEmbedding(head_dim, base=base, interleaved=interleaved)

    def _back(self, x: Tensor) -> Tensor:
        return x if self.layout == "bhtd" else x.transpose(1, 2)

    def rotate_queries_and_keys(
        self, q: Tensor, k: Tensor, positions: Tensor | None = None, *, offset: int = 0
    ) -> tuple[Tensor, Tensor]:
        """RoPE: keys at `offset + arange(Tk)`, queries at the last Tq of those."""
        q = _as_bhtd("q", q, self.head_dim, self.layout)
        k = _as_bhtd("k", k, self.head_dim, self.layout)
        q, k = self.rotary.rotate_queries_and_keys(
            q, k, positions=positions, offset=offset
        )
        return self._back(q), self._back(k)

    def rotate_values(
        self, v: Tensor, positions: Tensor | None = None, *, offset: int = 0
    ) -> Tensor:
        """R(j) v_j: each value rotated to its key's position."""
        v = _as_bhtd("v", v, self.head_dim, self.layout)
        return self._back(self.rotary(v, positions, offset=_check_offset(offset)))

    def unrotate_output(
        self, y: Tensor, positions: Tensor | None = None, *, offset: int = 0
    ) -> Tensor:
        """R(-i) y_i: each attention output rotated back by its query's position."""
        y = _as_bhtd("y", y, self.head_dim, self.layout)
        offset = _check_offset(offset)
        if positions is None:
            positions = torch.arange(offset, offset + y.shape[-2], device=y.device)
        elif offset:
            raise ValueError("pass either positions or offset, not both")
        return self._back(self.rotary(y, -torch.as_tensor(positions, device=y.device)))


__all__ = [
    "LAYOUTS",
    "RotaryValues",
]
