# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Context
#    extension: changing the frequencies after training
"""Context extension by changing RoPE's frequencies: PI, NTK-aware scaling and YaRN.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import math

from torch import Tensor

from ropelib.rope import rope_frequencies

EXTENSIONS = ("none", "pi", "ntk", "yarn")


def _check_factor(factor: float) -> None:
    number = isinstance(factor, (int, float)) and not isinstance(factor, bool)
    if not (number and factor >= 1):  # NaN fails too
        raise ValueError(f"factor must be a number >= 1, got {factor!r}")


def interpolated_frequencies(
    head_dim: int, factor: float, base: float = 10000.0
) -> Tensor:
    """Position interpolation (Chen et al. 2023), θ_j / factor.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    _check_factor(factor)
    return rope_frequencies(head_dim, base) / factor


def ntk_frequencies(head_dim: int, factor: float, base: float = 10000.0) -> Tensor:
    """NTK-aware scaling, base · factor^(D/(D-2)).

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    _check_factor(factor)
    return rope_frequencies(head_dim, base * factor ** (head_dim / (head_dim - 2)))


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Context
#    extension: changing the frequencies after training
def yarn_frequencies(
    head_dim: int,
    factor: float,
    original_context: int,
    base: float = 10000.0,
    alpha: float = 1.0,
    beta: float = 32.0,
) -> Tensor:
    """YaRN's blend of θ_j/factor and θ_j, linear in the turns r_j (Peng et al. 2023).

    The ramp γ(r) = (r - alpha)/(beta - alpha), clamped to [0, 1], is linear in the
    number of turns r_j = original_context · θ_j / 2π, as the paper's text writes γ(r).
    The authors' released code and Hugging Face's `yarn` rope type ramp linearly in the
    pair index j instead, between the pair indices at which r = beta and r = alpha,
    rounded down and up; the two give different frequencies for the pairs in between.
    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    _check_factor(factor)
    if (
        isinstance(original_context, bool)
        or not isinstance(original_context, int)
        or original_context < 1
    ):
        raise ValueError(
            f"original_context must be a positive integer, got {original_context!r}"
        )
    theta = rope_frequencies(head_dim, base)
    turns = original_context * theta / (2 * math.pi)  # r_j = L / λ_j
    ramp = ((turns - alpha) / (beta - alpha)).clamp(0.0, 1.0)  # γ(r_j)
    return (1 - ramp) * theta / factor + ramp * theta


def yarn_logit_scale(factor: float) -> float:
    """YaRN's attention temperature: logits times (0.1 ln s + 1)².

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    _check_factor(factor)
    return (0.1 * math.log(factor) + 1.0) ** 2


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending a trained model
def scaled_frequencies(
    method: str,
    head_dim: int,
    factor: float = 1.0,
    base: float = 10000.0,
    original_context: int | None = None,
) -> tuple[Tensor, float]:
    """(frequencies, logit scale) of one context-extension `method` in EXTENSIONS.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    if method not in EXTENSIONS:
        raise ValueError(f"method must be one of {EXTENSIONS}, got {method!r}")
    if method == "none":
        return rope_frequencies(head_dim, base), 1.0
    if method == "pi":
        return interpolated_frequencies(head_dim, factor, base), 1.0
    if method == "ntk":
        return ntk_frequencies(head_dim, factor, base), 1.0
    if original_context is None:
        raise ValueError("method 'yarn' needs original_context, the training context")
    frequencies = yarn_frequencies(head_dim, factor, original_context, base)
    return frequencies, yarn_logit_scale(factor)


__all__ = [
    "EXTENSIONS",
    "interpolated_frequencies",
    "ntk_frequencies",
    "scaled_frequencies",
    "yarn_frequencies",
    "yarn_logit_scale",
]
