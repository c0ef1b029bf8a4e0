# generated from notebooks/09_long_context.md by tools/export.py, do not edit

"""Context extension of trained models and long-context diagnostics.

Derived in notebooks/09_long_context.md.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ropelib.model import RoPE
from ropelib.rope import (
    RotaryEmbedding,
    interpolated_frequencies,
    ntk_frequencies,
    rope_angles,
    rope_frequencies,
    yarn_frequencies,
    yarn_logit_scale,
)

__all__ = ["EXTENSIONS", "extend_context", "inversion_probabilities"]

EXTENSIONS = ("none", "pi", "ntk", "yarn")


def extend_context(
    model: nn.Module, method: str, factor: float = 1.0, original_context: int | None = None
) -> int:
    """Set the frequencies of every RoPE layer of `model` for a context `factor` times longer.

    Returns the number of layers changed. Derived in notebooks/09_long_context.md.
    """
    if method not in EXTENSIONS:
        raise ValueError(f"method must be one of {EXTENSIONS}, got {method!r}")
    changed = 0
    for module in model.modules():
        if not isinstance(module, RoPE) or getattr(module, "rope", None) is None:
            continue
        rope: RotaryEmbedding = module.rope
        base = module.config.rope_base
        D = rope.rotary_dim
        if method == "none":
            frequencies, scale = rope_frequencies(D, base), 1.0
        elif method == "pi":
            frequencies, scale = interpolated_frequencies(D, factor, base), 1.0
        elif method == "ntk":
            frequencies, scale = ntk_frequencies(D, factor, base), 1.0
        else:
            context = original_context or module.config.block_size
            frequencies, scale = (
                yarn_frequencies(D, factor, context, base),
                yarn_logit_scale(factor),
            )
        rope.frequencies = frequencies
        rope._cache.clear()
        module.logit_scale = scale
        changed += 1
    return changed


def _scores(q: Tensor, k: Tensor, distances: Tensor, frequencies: Tensor) -> Tensor:
    """qᵀ R(d) k for rows of q, k `[n, D]` and distances `[n]`, in float64 (complex form)."""
    qc = torch.view_as_complex(q.unflatten(-1, (-1, 2)))
    kc = torch.view_as_complex(k.unflatten(-1, (-1, 2)))
    angles = rope_angles(distances, frequencies)
    return (qc.conj() * kc * torch.polar(torch.ones_like(angles), angles)).real.sum(-1)


def inversion_probabilities(
    context_length: int,
    base: float = 10000.0,
    head_dim: int = 64,
    samples: int = 20000,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Monte Carlo probabilities of position and token inversion within `context_length`.

    Derived in notebooks/09_long_context.md.
    """
    if (
        isinstance(context_length, bool)
        or not isinstance(context_length, int)
        or context_length < 2
    ):
        raise ValueError(f"context_length must be an integer >= 2, got {context_length!r}")
    frequencies = rope_frequencies(head_dim, base)
    g = generator or torch.Generator().manual_seed(0)
    q = torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    d = torch.randint(0, context_length, (samples, 2), generator=g)
    near, far = d.min(-1).values, d.max(-1).values
    distinct = near < far
    position = (_scores(q, q, far, frequencies) > _scores(q, q, near, frequencies))[distinct]
    matching = q + noise * torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    other = torch.randn(samples, head_dim, generator=g, dtype=torch.float64)
    zero = torch.zeros(samples, dtype=torch.long)
    at_zero = _scores(q, matching, zero, frequencies) > _scores(q, other, zero, frequencies)
    at_d = _scores(q, matching, d[:, 0], frequencies) > _scores(q, other, d[:, 0], frequencies)
    return {
        "position inversion": position.double().mean().item(),
        "token inversion": (at_zero != at_d).double().mean().item(),
    }
