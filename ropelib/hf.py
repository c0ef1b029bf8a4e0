# generated from notebooks/10_hf.md by tools/export.py, do not edit

# %% notebooks/10_hf.md: ropelib in other people's models / The code
"""ropelib's rotations in Hugging Face `transformers` Llama-family models.

Derived in the chapter *ropelib in other people's models*.
Needs `pip install ropelib[hf]`.
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor, nn

from ropelib import scaling
from ropelib.rope import rope_angles

ATTENTION = "ropelib"  # the name under which the attention function is registered


def _transformers(module: str = "transformers"):
    """`transformers` (or one of its modules), or a one-line error naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            "ropelib.hf needs Hugging Face transformers: pip install ropelib[hf]"
        ) from error


# %% notebooks/10_hf.md: ropelib in other people's models / The code
def rope_parameters(config) -> tuple[str, int, float, dict]:
    """`(rope_type, head_dim, base, parameters)` of a transformers config, for ropelib.

    Derived in the chapter *ropelib in other people's models*.
    """
    parameters = dict(getattr(config, "rope_parameters", None) or {})
    rope_type = parameters.pop("rope_type", "default")
    base = float(parameters.pop("rope_theta", getattr(config, "rope_theta", 10000.0)))
    head_dim = getattr(config, "head_dim", None)
    head_dim = head_dim or config.hidden_size // config.num_attention_heads
    length = config.max_position_embeddings
    if rope_type == "dynamic":
        parameters.setdefault("original_max_position_embeddings", length)
    original = parameters.get("original_max_position_embeddings")
    if rope_type in ("yarn", "longrope") and parameters.get("factor") is None:
        parameters["factor"] = length / original
    parameters = {
        name: value for name, value in parameters.items() if value is not None
    }
    return rope_type, head_dim, base, parameters


def scaled_rope(config, seq_len: int | None = None) -> tuple[Tensor, float]:
    """ropelib's `(inv_freq, attention_factor)` for a transformers config.

    Derived in the chapter *ropelib in other people's models*.
    """
    rope_type, head_dim, base, parameters = rope_parameters(config)
    registry = getattr(scaling, "ROPE_SCALING", {})
    if rope_type not in registry:
        raise ValueError(
            f"rope_type {rope_type!r} is not in ropelib.scaling.ROPE_SCALING "
            f"({', '.join(sorted(registry)) or 'empty'})"
        )
    return scaling.scaled_frequencies(
        rope_type, head_dim, base=base, seq_len=seq_len, **parameters
    )


# %% notebooks/10_hf.md: ropelib in other people's models / The code
class HFRotaryEmbedding(nn.Module):
    """`rotary_emb(x, position_ids) -> (cos, sin)` of a transformers model, by ropelib.

    Derived in the chapter *ropelib in other people's models*.
    """

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.rope_type, self.head_dim, _, parameters = rope_parameters(config)
        self.original = parameters.get("original_max_position_embeddings")
        self.longest = self.original  # dynamic: the high-water mark of the length
        self._last: tuple = (object(), None, 1.0)  # (length, inv_freq, factor)
        # a rope type that ropelib lacks fails here, not at the first call
        scaled_rope(config)

    def scaled_length(self, position_ids: Tensor) -> int | None:
        """The length whose frequencies this call uses (None: any)."""
        if self.rope_type not in ("dynamic", "longrope"):
            return None
        length = int(position_ids.max()) + 1
        if self.rope_type == "longrope":
            return length
        if length < self.original:  # back inside the original context: reset
            self.longest = self.original
        self.longest = max(self.longest, length)
        return self.longest

    def frequencies(self, length: int | None) -> tuple[Tensor, float]:
        """ropelib's frequencies for `length`, recomputed only when it changes."""
        if self._last[0] != length:
            self._last = (length, *scaled_rope(self.config, length))
        return self._last[1], self._last[2]

    @torch.no_grad()
    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        """cos and sin `[B, T, D]`, times the attention factor, in `x`'s dtype."""
        inv_freq, factor = self.frequencies(self.scaled_length(position_ids))
        angles = rope_angles(position_ids, inv_freq)  # float64 [B, T, D/2]
        angles = torch.cat((angles, angles), dim=-1)  # half-split: pair j with j + D/2
        cos, sin = angles.cos() * factor, angles.sin() * factor
        return cos.to(x.device, x.dtype), sin.to(x.device, x.dtype)


# %% notebooks/10_hf.md: ropelib in other people's models / The code
class IdentityRotaryEmbedding(nn.Module):
    """cos = 1, sin = 0: the model's own rotation leaves q and k as they are.

    Derived in the chapter *ropelib in other people's models*.
    """

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim

    @torch.no_grad()
    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        shape = (*position_ids.shape, self.head_dim)
        ones = torch.ones(shape, dtype=x.dtype, device=x.device)
        return ones, torch.zeros_like(ones)


def _check_positions(position_ids: Tensor | None, n_queries: int, n_keys: int) -> None:
    if position_ids is None or torch.compiler.is_compiling():
        return
    expected = torch.arange(n_keys - n_queries, n_keys, device=position_ids.device)
    if not bool((position_ids == expected).all()):
        raise ValueError(
            f"position_ids must be {n_keys - n_queries}..{n_keys - 1} in every row "
            "(keys at 0..Tk-1): the ropelib attention function takes no left padding "
            "or packed sequences; use_ropelib(model) without a scheme does"
        )


# %% notebooks/10_hf.md: ropelib in other people's models / The code
def ropelib_attention(module, query, key, value, attention_mask, **kwargs):
    """Attention with the module's ropelib scheme applied to q, k (and RoVE's v, y).

    Derived in the chapter *ropelib in other people's models*.
    """
    rotary = module.ropelib_rotary
    n_queries, n_keys = query.shape[2], key.shape[2]
    _check_positions(kwargs.get("position_ids"), n_queries, n_keys)
    query, key = rotary.rotate_queries_and_keys(query, key)  # queries: the last Tq
    rove = hasattr(rotary, "rotate_values")
    if rove:
        value = rotary.rotate_values(value)
    inner = _transformers("transformers.modeling_utils").ALL_ATTENTION_FUNCTIONS
    inner = inner.get_interface(module.ropelib_inner, _eager_attention(module))
    output, weights = inner(module, query, key, value, attention_mask, **kwargs)
    if rove:  # [B, Tq, H, D]: back by each query's position
        output = rotary.unrotate_output(
            output.transpose(1, 2), offset=n_keys - n_queries
        )
        output = output.transpose(1, 2)
    return output, weights


def _eager_attention(module):
    return importlib.import_module(type(module).__module__).eager_attention_forward


def register_attention() -> None:
    """Register `ropelib_attention` (and sdpa's mask format) under the name "ropelib".

    Derived in the chapter *ropelib in other people's models*.
    """
    _transformers()
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, ropelib_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


# %% notebooks/10_hf.md: ropelib in other people's models / The code
def use_ropelib(model, rotary: nn.Module | None = None):
    """Put ropelib's RoPE, or the scheme `rotary`, into a transformers Llama model.

    In place; returns `model`.
    Derived in the chapter *ropelib in other people's models*.
    """
    _transformers()
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not hasattr(decoder, "rotary_emb") or not hasattr(decoder, "layers"):
        raise ValueError(
            f"model must be a transformers Llama-family model with a rotary_emb and "
            f"layers, got {type(model).__name__}"
        )
    device = next(model.parameters()).device
    if rotary is None:
        decoder.rotary_emb = HFRotaryEmbedding(model.config).to(device)
        return model
    if not hasattr(rotary, "rotate_queries_and_keys"):
        raise ValueError(
            "rotary must have rotate_queries_and_keys(q, k), got "
            f"{type(rotary).__name__}"
        )
    _, head_dim, _, _ = rope_parameters(model.config)
    decoder.rotary_emb = IdentityRotaryEmbedding(head_dim).to(device)
    inner = model.config._attn_implementation
    inner = "sdpa" if inner in (None, ATTENTION) else inner
    for layer in decoder.layers:
        layer.self_attn.ropelib_rotary = rotary.to(device)
        layer.self_attn.ropelib_inner = inner
    register_attention()
    model.set_attn_implementation(ATTENTION)
    return model


# %% notebooks/10_hf.md: ropelib in other people's models / The code
def interleave_rotary_weights(model) -> None:
    """Permute each head's rows of W_q, W_k (and biases) from half-split to interleaved.

    In place. Derived in the chapter *ropelib in other people's models*.
    """
    from ropelib.rope import half_split_permutation

    _, head_dim, _, _ = rope_parameters(model.config)
    perm = half_split_permutation(head_dim)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    with torch.no_grad():
        for layer in decoder.layers:
            for projection in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                for tensor in (projection.weight, projection.bias):
                    if tensor is not None:
                        heads = tensor.unflatten(0, (-1, head_dim))
                        tensor.copy_(heads[:, perm.to(tensor.device)].flatten(0, 1))


__all__ = [
    "ATTENTION",
    "HFRotaryEmbedding",
    "IdentityRotaryEmbedding",
    "interleave_rotary_weights",
    "register_attention",
    "rope_parameters",
    "ropelib_attention",
    "scaled_rope",
    "use_ropelib",
]
