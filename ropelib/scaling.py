# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / A
#    registry of rope types
"""RoPE scaling: context extension as a registry of pure functions (HF's rope types).

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import Tensor

from ropelib.rope import rope_frequencies

ScalingFunction = Callable[..., tuple[Tensor, float]]
ROPE_SCALING: dict[str, ScalingFunction] = {}
SHARED_PARAMETERS = ("partial_rotary_factor",)  # every type: rotate part of the head


def register_rope_scaling(name: str) -> Callable[[ScalingFunction], ScalingFunction]:
    """Decorator registering `fn(dim, *, base, seq_len, ...)` as rope type `name`.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    def register(fn: ScalingFunction) -> ScalingFunction:
        keywords = inspect.signature(fn).parameters
        if not {"base", "seq_len"} <= set(keywords):
            raise ValueError(
                f"a rope scaling function takes the keywords base and seq_len; "
                f"{getattr(fn, '__name__', fn)!r} does not"
            )
        ROPE_SCALING[name] = fn
        return fn

    return register


def _check_number(name: str, value: object, minimum: float, strict=False) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (
        not (number and math.isfinite(value))
        or value < minimum
        or (strict and value == minimum)
    ):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_factor(factor: object) -> float:
    return _check_number("factor", factor, 1.0)


def _check_context(context: object) -> int:
    return _check_integer("original_max_position_embeddings", context, 1)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / A
#    registry of rope types
def _rotated_dim(head_dim: int, partial_rotary_factor: object) -> int:
    """int(head_dim * partial_rotary_factor), checked to be even and at least 2."""
    p = _check_number("partial_rotary_factor", partial_rotary_factor, 0.0, strict=True)
    dim = int(head_dim * p)
    if p > 1 or dim < 2 or dim % 2:
        raise ValueError(
            f"partial_rotary_factor must be in (0, 1] and leave an even number >= 2 of "
            f"rotated channels, got {partial_rotary_factor!r} (head_dim {head_dim})"
        )
    return dim


def scaling_parameters(rope_type: str) -> dict[str, bool]:
    """{parameter: required} of the rope type `rope_type`.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    if rope_type not in ROPE_SCALING:
        known = ", ".join(sorted(ROPE_SCALING))
        raise ValueError(f"rope_type must be one of {known}; got {rope_type!r}")
    keywords = inspect.signature(ROPE_SCALING[rope_type]).parameters.items()
    return {
        name: p.default is p.empty
        for name, p in keywords
        if p.kind is p.KEYWORD_ONLY and name not in ("base", "seq_len")
    }


def scaled_frequencies(
    rope_type: str,
    head_dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    **parameters: object,
) -> tuple[Tensor, float]:
    """(inverse frequencies, attention factor on cos and sin) of one rope type.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    takes = scaling_parameters(rope_type)
    accepted = sorted({*takes, *SHARED_PARAMETERS})
    for name in parameters:
        if name not in accepted:
            raise ValueError(
                f"rope type {rope_type!r} takes no parameter {name!r}; it takes "
                f"{', '.join(accepted)}"
            )
    for name, required in takes.items():
        if required and name not in parameters:
            raise ValueError(f"rope type {rope_type!r} needs the parameter {name!r}")
    _check_integer("head_dim", head_dim, 2)
    base = _check_number("base", base, 1.0, strict=True)
    if seq_len is not None:
        _check_integer("seq_len", seq_len, 0)
    dim = head_dim
    if "partial_rotary_factor" not in takes:
        dim = _rotated_dim(head_dim, parameters.pop("partial_rotary_factor", 1.0))
    fn = ROPE_SCALING[rope_type]
    frequencies, attention_factor = fn(dim, base=base, seq_len=seq_len, **parameters)
    return frequencies, float(attention_factor)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / A
#    registry of rope types
def attention_factor_to_logit_scale(attention_factor: float) -> float:
    """The factor on q·k of an attention factor on cos and sin: its square.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    return _check_number("attention_factor", attention_factor, 0.0) ** 2


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Position
#    interpolation and NTK-aware scaling
@register_rope_scaling("default")
def default_frequencies(
    dim: int, *, base: float = 10000.0, seq_len: int | None = None
) -> tuple[Tensor, float]:
    """RoPE's own θ_j = base^(-2j/dim); attention factor 1.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    return rope_frequencies(dim, base), 1.0


@register_rope_scaling("linear")
def interpolated_frequencies(
    dim: int, *, base: float = 10000.0, seq_len: int | None = None, factor: float
) -> tuple[Tensor, float]:
    """Position interpolation (Chen et al. 2023): θ_j / factor; attention factor 1.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    return rope_frequencies(dim, base) / _check_factor(factor), 1.0


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Position
#    interpolation and NTK-aware scaling
def _check_ntk_dim(dim: int) -> int:
    if dim < 4:  # base^(D/(D-2)) needs D > 2
        raise ValueError(
            f"NTK-aware scaling needs at least 4 rotated channels, got {dim}"
        )
    return dim


@register_rope_scaling("ntk")
def ntk_frequencies(
    dim: int, *, base: float = 10000.0, seq_len: int | None = None, factor: float
) -> tuple[Tensor, float]:
    """NTK-aware scaling: the base times factor^(dim/(dim-2)); attention factor 1.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    exponent = _check_ntk_dim(dim) / (dim - 2)
    return rope_frequencies(dim, base * _check_factor(factor) ** exponent), 1.0


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Dynamic
#    NTK, and the KV cache
@register_rope_scaling("dynamic")
def dynamic_ntk_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    factor: float,
    original_max_position_embeddings: int,
) -> tuple[Tensor, float]:
    """Dynamic NTK: NTK-aware scaling by factor·n/L - (factor - 1) at length n > L.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    context = _check_context(original_max_position_embeddings)
    factor = _check_factor(factor)
    n = max(seq_len or context, context)  # within L: RoPE itself
    alpha = factor * n / context - (factor - 1)
    exponent = _check_ntk_dim(dim) / (dim - 2)
    return rope_frequencies(dim, base * alpha**exponent), 1.0


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / YaRN:
#    the paper's ramp and the released code's
@register_rope_scaling("yarn-paper")
def yarn_paper_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    factor: float,
    original_max_position_embeddings: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
) -> tuple[Tensor, float]:
    """YaRN with the paper's ramp γ(r), linear in the turns r_j = L θ_j / 2π.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    context = _check_context(original_max_position_embeddings)
    beta_fast, beta_slow = _check_betas(beta_fast, beta_slow)
    theta = rope_frequencies(dim, base)
    turns = context * theta / (2 * math.pi)  # r_j = L / λ_j
    ramp = ((turns - beta_slow) / (beta_fast - beta_slow)).clamp(0.0, 1.0)  # γ(r_j)
    scale = yarn_attention_factor(factor, attention_factor, mscale, mscale_all_dim)
    return (1 - ramp) * theta / _check_factor(factor) + ramp * theta, scale


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / YaRN:
#    the paper's ramp and the released code's
def _check_betas(beta_fast: object, beta_slow: object) -> tuple[float, float]:
    fast = _check_number("beta_fast", beta_fast, 0.0, strict=True)
    slow = _check_number("beta_slow", beta_slow, 0.0, strict=True)
    if fast <= slow:
        raise ValueError(f"beta_fast must exceed beta_slow, got {fast} <= {slow}")
    return fast, slow


def yarn_attention_factor(
    factor: float,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
) -> float:
    """YaRN's attention factor on cos and sin, 0.1 ln s + 1 (or mscale's ratio).

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    factor = _check_factor(factor)
    if attention_factor is not None:
        return _check_number("attention_factor", attention_factor, 0.0)

    def temperature(m: float) -> float:
        return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0

    if mscale and mscale_all_dim:  # both set and non-zero, as Hugging Face reads them
        numerator = _check_number("mscale", mscale, 0.0)
        denominator = _check_number("mscale_all_dim", mscale_all_dim, 0.0)
        return temperature(numerator) / temperature(denominator)
    return temperature(1.0)


def yarn_logit_scale(factor: float) -> float:
    """YaRN's 1/t on the logits, (0.1 ln s + 1)²: the attention factor squared.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    return attention_factor_to_logit_scale(yarn_attention_factor(factor))


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / YaRN:
#    the paper's ramp and the released code's
def yarn_correction_dim(turns: float, dim: int, base: float, context: int) -> float:
    """j(r): the fractional pair index at which a pair makes `turns` turns in `context`.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    return dim * math.log(context / (turns * 2 * math.pi)) / (2 * math.log(base))


@register_rope_scaling("yarn")
def yarn_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    factor: float,
    original_max_position_embeddings: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    truncate: bool = True,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
) -> tuple[Tensor, float]:
    """YaRN as released (and in Hugging Face): a ramp linear in the pair index j.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    context = _check_context(original_max_position_embeddings)
    beta_fast, beta_slow = _check_betas(beta_fast, beta_slow)
    if not isinstance(truncate, bool):
        raise ValueError(f"truncate must be True or False, got {truncate!r}")
    low = yarn_correction_dim(beta_fast, dim, base, context)  # r = beta_fast: kept
    high = yarn_correction_dim(beta_slow, dim, base, context)  # r = beta_slow: PI
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)  # dim - 1, as in the released code
    high = high + 0.001 if high == low else high  # the released code's guard
    pair = torch.arange(dim // 2, dtype=torch.float64)
    ramp = ((pair - low) / (high - low)).clamp(0.0, 1.0)  # 0: kept, 1: divided by s
    theta = rope_frequencies(dim, base)
    scale = yarn_attention_factor(factor, attention_factor, mscale, mscale_all_dim)
    return (1 - ramp) * theta + ramp * theta / _check_factor(factor), scale


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    LongRoPE: a factor per pair, and a switch at $L$
def _check_rescale(name: str, values: object, pairs: int) -> Tensor:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{name} must be a list of {pairs} numbers, got {values!r}")
    if len(values) != pairs:
        raise ValueError(
            f"{name} must have {pairs} entries (one per pair), got {len(values)}"
        )
    for value in values:
        _check_number(name, value, 0.0, strict=True)
    return torch.tensor([float(value) for value in values], dtype=torch.float64)


@register_rope_scaling("longrope")
def longrope_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    short_factor: list[float],
    long_factor: list[float],
    original_max_position_embeddings: int,
    factor: float | None = None,
    attention_factor: float | None = None,
) -> tuple[Tensor, float]:
    """LongRoPE: θ_j / λ_j, short factors up to L and long factors past it.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    context = _check_context(original_max_position_embeddings)
    short = _check_rescale("short_factor", short_factor, dim // 2)
    long = _check_rescale("long_factor", long_factor, dim // 2)
    rescale = long if seq_len is not None and seq_len > context else short
    if attention_factor is not None:
        scale = _check_number("attention_factor", attention_factor, 0.0)
    elif factor is None:
        raise ValueError(
            "longrope needs factor (max_position_embeddings / "
            "original_max_position_embeddings) or attention_factor"
        )
    elif _check_factor(factor) == 1:
        scale = 1.0
    else:
        scale = math.sqrt(1 + math.log(factor) / math.log(context))
    return rope_frequencies(dim, base) / rescale, scale


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Llama 3:
#    wavelength bands
@register_rope_scaling("llama3")
def llama3_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    factor: float,
    original_max_position_embeddings: int,
    low_freq_factor: float,
    high_freq_factor: float,
) -> tuple[Tensor, float]:
    """Llama 3.1's bands: keep λ < L/high, divide λ > L/low by factor, blend between.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    context = _check_context(original_max_position_embeddings)
    factor = _check_factor(factor)
    low = _check_number("low_freq_factor", low_freq_factor, 0.0, strict=True)
    high = _check_number("high_freq_factor", high_freq_factor, 0.0, strict=True)
    if high <= low:
        raise ValueError(
            f"high_freq_factor must exceed low_freq_factor, got {high} <= {low}"
        )
    theta = rope_frequencies(dim, base)
    wavelength = 2 * math.pi / theta
    scaled = torch.where(wavelength > context / low, theta / factor, theta)
    smooth = (context / wavelength - low) / (high - low)
    blend = (1 - smooth) * theta / factor + smooth * theta
    medium = (wavelength >= context / high) & (wavelength <= context / low)
    return torch.where(medium, blend, scaled), 1.0


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Proportional RoPE: part of the head, at the full head's frequencies
@register_rope_scaling("proportional")
def proportional_frequencies(
    dim: int,
    *,
    base: float = 10000.0,
    seq_len: int | None = None,
    factor: float = 1.0,
    partial_rotary_factor: float = 1.0,
) -> tuple[Tensor, float]:
    """The first p·dim/2 of the full head's θ_j, then zeros (unrotated), / factor.

    Derived in the chapter *Rotary values, context extension and long contexts*.
    """
    p = _check_number("partial_rotary_factor", partial_rotary_factor, 0.0)
    if p > 1:
        raise ValueError(f"partial_rotary_factor must be in [0, 1], got {p}")
    if dim % 2:
        raise ValueError(f"proportional RoPE needs an even head_dim, got {dim}")
    rotated = int(p * dim // 2)
    theta = rope_frequencies(dim, base)
    theta[rotated:] = 0.0  # pairs past p·dim/2 stay where they are
    return theta / _check_factor(factor), 1.0


__all__ = [
    "attention_factor_to_logit_scale",
    "default_frequencies",
    "dynamic_ntk_frequencies",
    "interpolated_frequencies",
    "llama3_frequencies",
    "longrope_frequencies",
    "ntk_frequencies",
    "proportional_frequencies",
    "register_rope_scaling",
    "ROPE_SCALING",
    "scaled_frequencies",
    "scaling_parameters",
    "ScalingFunction",
    "SHARED_PARAMETERS",
    "yarn_attention_factor",
    "yarn_correction_dim",
    "yarn_frequencies",
    "yarn_logit_scale",
    "yarn_paper_frequencies",
]
