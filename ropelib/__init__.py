"""ropelib: rotary position embeddings and their variants, derived in the book's notebooks.

Every module except this one is generated from `notebooks/*.md` by `tools/export.py`.
"""

from ropelib.rope import (
    RotaryEmbedding,
    apply_rope,
    apply_rotary,
    half_split_permutation,
    rope_angles,
    rope_frequencies,
)

__version__ = "0.1.0"

__all__ = [
    "RotaryEmbedding",
    "apply_rope",
    "apply_rotary",
    "half_split_permutation",
    "rope_angles",
    "rope_frequencies",
]
