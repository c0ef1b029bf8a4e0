# generated from notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts /
#    Extending a trained model
"""Context extension of trained GPTs, and the inversion probabilities of their layer 0.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ropelib.long_context import check_context_length
from ropelib.scaling import scaling_parameters
from ropelib.schemes.rope import RoPEScheme


def extend_context(
    model: nn.Module, rope_type: str, *, seq_len: int | None = None, **parameters
) -> int:
    """Give every RoPE-family layer of `model` the frequencies of `rope_type`.

    Returns the number of layers changed. Derived in the chapter *Rotary values,
    context extension and long contexts*.
    """
    takes = scaling_parameters(rope_type)  # an unknown type fails before any change
    changed = 0
    for module in model.modules():
        if not isinstance(module, RoPEScheme) or getattr(module, "rope", None) is None:
            continue
        options = dict(parameters)
        if "original_max_position_embeddings" in takes:
            trained = module.config.rope_scaling.get(
                "original_max_position_embeddings", module.config.block_size
            )  # a model fine-tuned with a rope type was trained at its original context
            options.setdefault("original_max_position_embeddings", trained)
        module.set_rope_scaling(rope_type, seq_len=seq_len, **options)
        changed += 1
    return changed


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / The same
#    probabilities in trained models
def _first_layer_queries_and_keys(
    model: nn.Module, tokens: Tensor
) -> tuple[Tensor, Tensor]:
    """Layer 0's queries and keys `[H, *tokens.shape, D]`, of tokens alone."""
    block = model.transformer.h[0]
    was_training = model.training
    model.eval()
    x = block.ln_1(model.transformer.wte(tokens))  # no position enters layer 0's input
    q, k, _ = block.attn.qkv(x)
    model.train(was_training)
    H = block.attn.n_head
    q, k = (t.unflatten(-1, (H, -1)).movedim(-2, 0) for t in (q, k))
    return q, k


@torch.no_grad()
def model_inversion_probabilities(
    model: nn.Module,
    tokens,
    context_length: int,
    samples: int = 20000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Position and token inversion of the first layer of a trained RoPE-family GPT.

    Tokens are drawn from `tokens`; probabilities are averaged over heads. Derived in
    the chapter *Rotary values, context extension and long contexts*.
    """
    check_context_length(context_length)
    scheme = model.transformer.h[0].attn.pe
    if not isinstance(scheme, RoPEScheme):
        raise ValueError(
            f"model needs a RoPE-family scheme, got pe={model.config.pe!r}"
        )
    g = generator or torch.Generator().manual_seed(0)
    if not isinstance(tokens, Tensor):  # a memmap of ids: torch needs a writable copy
        tokens = torch.from_numpy(np.array(tokens, dtype=np.int64))
    picks = tokens[torch.randint(len(tokens), (samples, 3), generator=g)]  # a, b, c
    q, k = _first_layer_queries_and_keys(model, picks.T)  # [H, 3, n, D]
    zero = torch.zeros(samples, dtype=torch.long)
    state: dict = {}  # one state for every call: xPos keeps one centre, as with a cache

    def score(key: Tensor, distance: Tensor) -> Tensor:
        """[H, n] scores of the query of token a at `distance` and `key` at 0."""
        query, _ = scheme.rotate(q[:, 0][None], q[:, 0][None], distance, None, state)
        _, key = scheme.rotate(key[None], key[None], zero, None, state)
        return (query * key).sum(-1)[0].double()

    d = torch.randint(0, context_length, (samples, 2), generator=g)
    near, far = d.min(-1).values, d.max(-1).values
    position = (score(k[:, 0], far) > score(k[:, 0], near))[:, near < far]
    at_zero = score(k[:, 1], zero) > score(k[:, 2], zero)
    at_d = score(k[:, 1], d[:, 0]) > score(k[:, 2], d[:, 0])
    return {
        "position inversion": position.double().mean().item(),
        "token inversion": (at_zero != at_d).double().mean().item(),
    }


__all__ = [
    "extend_context",
    "model_inversion_probabilities",
]
