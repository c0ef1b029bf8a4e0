"""ropelib: rotary position embeddings and their variants, derived in the book's chapters.

Each method stands alone and goes into any attention layer (see the README); importing the
package also registers the GPT's position schemes (`ropelib.schemes`). Every module except the
packages' `__init__` files is generated from `notebooks/*.md` by `tools/export.py`.
"""

from ropelib.bias import (
    ALiBi,
    PartialRoPE,
    T5RelativeBias,
    alibi_slopes,
    half_truncated_frequencies,
    partial_rope_frequencies,
    t5_relative_bucket,
)
from ropelib.comrope import AxialRoPE, ComRoPEAP, ComRoPELD, LieRE, RoPEMixed
from ropelib.crope import ComplexLinear, ComplexQKV
from ropelib.hdd import HDDRoPE
from ropelib.rope import (
    RotaryEmbedding,
    apply_rope,
    apply_rotary,
    half_split_permutation,
    rope_angles,
    rope_frequencies,
)
from ropelib.rove import RotaryValues
from ropelib.scaling import (
    ROPE_SCALING,
    attention_factor_to_logit_scale,
    register_rope_scaling,
    scaled_frequencies,
    scaling_parameters,
)
from ropelib.scan import associative_scan, prefix_scan
from ropelib.xpos import XPos, apply_xpos

__version__ = "0.1.0"

__all__ = [
    "ROPE_SCALING",
    "attention_factor_to_logit_scale",
    "register_rope_scaling",
    "scaling_parameters",
    "ALiBi",
    "PartialRoPE",
    "T5RelativeBias",
    "alibi_slopes",
    "half_truncated_frequencies",
    "partial_rope_frequencies",
    "t5_relative_bucket",
    "AxialRoPE",
    "ComRoPEAP",
    "ComRoPELD",
    "ComplexLinear",
    "ComplexQKV",
    "HDDRoPE",
    "LieRE",
    "RoPEMixed",
    "RotaryEmbedding",
    "RotaryValues",
    "XPos",
    "apply_rope",
    "apply_rotary",
    "apply_xpos",
    "associative_scan",
    "half_split_permutation",
    "prefix_scan",
    "rope_angles",
    "rope_frequencies",
    "scaled_frequencies",
]

import ropelib.schemes  # noqa: E402,F401  (registers the GPT adapters: the model names no method)
