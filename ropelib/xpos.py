# generated from notebooks/02_gpt.md by tools/export.py, do not edit

# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
"""xPos: RoPE whose scores decay exponentially with distance, pair by pair."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ropelib.rope import RotaryEmbedding


def xpos_zeta(head_dim: int, gamma: float = 0.4) -> Tensor:
    """xPos's decay rates ζ_i = (2i/D + γ)/(1 + γ), i < D/2, as a float64 CPU tensor.

    Derived in the chapter *A GPT-2 with pluggable position schemes*.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
        raise ValueError(f"head_dim must be a positive even integer, got {head_dim!r}")
    if head_dim % 2:
        raise ValueError(f"head_dim must be a positive even integer, got {head_dim!r}")
    if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    i = torch.arange(head_dim // 2, dtype=torch.float64, device="cpu")
    return (2 * i / head_dim + gamma) / (1 + gamma)


def xpos_centre(positions: Tensor) -> Tensor:
    """The default reference position: the middle of each row of `positions`.

    Derived in the chapter *A GPT-2 with pluggable position schemes*.
    """
    positions = positions.double()
    return (positions.amin(-1, keepdim=True) + positions.amax(-1, keepdim=True)) / 2


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
def xpos_scales(
    positions: Tensor,
    zeta: Tensor,
    centre: Tensor | float,
    scale_base: float,
    *,
    sign: float = 1.0,
    interleaved: bool = True,
) -> Tensor:
    """ζ_i^(sign·(n - centre)/scale_base) per position n, float64 `[..., T, D]`.

    Derived in the chapter *A GPT-2 with pluggable position schemes*.
    """
    powers = sign * (positions.double() - centre)[..., None] / scale_base
    scale = zeta.to(positions.device, torch.float64) ** powers  # [..., T, D/2]
    if interleaved:
        return scale.repeat_interleave(2, dim=-1)
    return torch.cat((scale, scale), dim=-1)


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
def _scaled(
    x: Tensor, positions: Tensor, centre: Tensor, sign: float, xpos: XPos
) -> Tensor:
    """`x` times its scales in the compute dtype; a scale that overflows is refused."""
    zeta, base, interleaved = xpos.zeta, xpos.scale_base, xpos.interleaved
    # [T, D], or [B, T, D] for per-sample positions
    scale = xpos_scales(
        positions, zeta, centre, base, sign=sign, interleaved=interleaved
    )
    # the check reads the data, which a compiled graph cannot branch on: eager only
    overflow = not torch.compiler.is_compiling() and not bool(
        torch.isfinite(scale[..., 0].to(x.dtype)).all()
    )
    if overflow:
        spread = float((positions.double() - centre).abs().max())
        raise ValueError(
            f"xpos: positions lie up to {spread:,.0f} tokens from the centre and the "
            f"scales overflow {x.dtype}: pass a centre near them, rotate fewer "
            "positions at once, or use a wider dtype"
        )
    if positions.dim() == 2:  # per-sample positions: [B, T, D] -> [B, 1, T, D]
        scale = scale[:, None]
    if xpos.layout == "bthd":
        scale = scale.transpose(-2, -3) if scale.dim() == 4 else scale[:, None]
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return (x.to(compute) * scale.to(x.device, compute)).to(x.dtype)


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
class XPos(nn.Module):
    """xPos for `[B, H, T, D]` queries and keys (`layout="bthd"`: `[B, T, H, D]`).

    Derived in the chapter *A GPT-2 with pluggable position schemes*.
    """

    def __init__(
        self,
        head_dim: int,
        *,
        gamma: float = 0.4,
        scale_base: float = 512.0,
        base: float = 10000.0,
        interleaved: bool = True,
        layout: str = "bhtd",
    ) -> None:
        super().__init__()
        if not (isinstance(scale_base, (int, float)) and 0 < scale_base < math.inf):
            raise ValueError(f"scale_base must be finite and > 0, got {scale_base!r}")
        self.zeta = xpos_zeta(head_dim, gamma)  # float64 CPU: .half() must not round it
        self.rope = RotaryEmbedding(
            head_dim, base=base, interleaved=interleaved, layout=layout
        )
        self.gamma, self.scale_base = float(gamma), float(scale_base)
        self.interleaved, self.layout = bool(interleaved), layout

    def rotate_queries_and_keys(
        self,
        q: Tensor,
        k: Tensor,
        positions: Tensor | None = None,
        *,
        offset: int = 0,
        centre: float | Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """RoPE-rotated `q`, `k` scaled: pair i of q·k gains ζ_i^((m-n)/scale_base).

        Positions as in `RotaryEmbedding`; `centre` is the reference r (default: the
        middle of the keys' positions), which calls whose outputs meet must share.
        """
        q, k = self.rope.rotate_queries_and_keys(q, k, positions, offset=offset)
        axis = 2 if self.layout == "bhtd" else 1
        n_keys, n_queries = k.shape[axis], q.shape[axis]
        if positions is None:
            keys = torch.arange(offset, offset + n_keys, device=k.device)
        else:
            keys = torch.as_tensor(positions, device=k.device)
        if centre is None:
            centre = xpos_centre(keys)
        centre = torch.as_tensor(centre, dtype=torch.float64, device=k.device)
        queries = keys[..., n_keys - n_queries :]
        q = _scaled(q, queries, centre, 1.0, self)
        return q, _scaled(k, keys, centre, -1.0, self)


# %% notebooks/02_gpt.md: A GPT-2 with pluggable position schemes / xPos: a rotation with a
#    decay
def apply_xpos(
    q: Tensor,
    k: Tensor,
    positions: Tensor | None = None,
    *,
    offset: int = 0,
    centre: float | Tensor | None = None,
    gamma: float = 0.4,
    scale_base: float = 512.0,
    base: float = 10000.0,
    interleaved: bool = True,
    layout: str = "bhtd",
) -> tuple[Tensor, Tensor]:
    """xPos-rotated `(q, k)`; see `XPos`.

    Derived in the chapter *A GPT-2 with pluggable position schemes*.
    """
    xpos = XPos(
        q.shape[-1],
        gamma=gamma,
        scale_base=scale_base,
        base=base,
        interleaved=interleaved,
        layout=layout,
    )
    return xpos.rotate_queries_and_keys(q, k, positions, offset=offset, centre=centre)


__all__ = [
    "apply_xpos",
    "XPos",
    "xpos_centre",
    "xpos_scales",
    "xpos_zeta",
]
