# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Does
#    RoPE still order positions and tokens in long contexts?
"""Long-context diagnostics of RoPE: Monte Carlo position and token inversion.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ropelib.rope import rope_angles, rope_frequencies


def rotary_scores(
    q: Tensor, k: Tensor, distances: Tensor, frequencies: Tensor
) -> Tensor:
    """qᵀ R(d) k for rows of q, k `[n, D]` and distances `[n]`, in float64.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    qc = torch.view_as_complex(q.double().unflatten(-1, (-1, 2)))
    kc = torch.view_as_complex(k.double().unflatten(-1, (-1, 2)))
    angles = rope_angles(distances, frequencies)
    return (qc.conj() * kc * torch.polar(torch.ones_like(angles), angles)).real.sum(-1)


def check_context_length(context_length: object) -> int:
    """`context_length` if it is an integer >= 2, else a ValueError naming it."""
    if (
        isinstance(context_length, bool)
        or not isinstance(context_length, int)
        or context_length < 2
    ):
        raise ValueError(
            f"context_length must be an integer >= 2, got {context_length!r}"
        )
    return context_length


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Does
#    RoPE still order positions and tokens in long contexts?
def inversion_probabilities(
    context_length: int,
    base: float = 10000.0,
    head_dim: int = 64,
    samples: int = 20000,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Monte Carlo probabilities of position and token inversion within a context.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    check_context_length(context_length)
    frequencies = rope_frequencies(head_dim, base)
    g = generator or torch.Generator().manual_seed(0)

    def normal() -> Tensor:
        return torch.randn(samples, head_dim, generator=g, dtype=torch.float64)

    def score(q: Tensor, k: Tensor, d: Tensor) -> Tensor:
        return rotary_scores(q, k, d, frequencies)

    q = normal()
    d = torch.randint(0, context_length, (samples, 2), generator=g)
    near, far = d.min(-1).values, d.max(-1).values
    position = (score(q, q, far) > score(q, q, near))[near < far]
    matching, other = q + noise * normal(), normal()
    zero = torch.zeros(samples, dtype=torch.long)
    at_zero = score(q, matching, zero) > score(q, other, zero)
    at_d = score(q, matching, d[:, 0]) > score(q, other, d[:, 0])
    return {
        "position inversion": position.double().mean().item(),
        "token inversion": (at_zero != at_d).double().mean().item(),
    }


__all__ = [
    "check_context_length",
    "inversion_probabilities",
    "rotary_scores",
]
