# generated from notebooks/05_crope.md by tools/export.py, do not edit

# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / Complex-
#    linear maps as real matrices
"""CRoPE's complex-linear query, key and value projections, for any attention layer.

Put `ComplexQKV(d_model)` in place of a layer's query, key and value projections
and rotate q and k with `ropelib.rope.RotaryEmbedding(head_dim)` in the same
pairing: interleaved (the default of both), or half-split with
`ComplexQKV(d_model, interleaved=False, head_dim=D)` and
`RotaryEmbedding(D, interleaved=False)`. Derived in the chapter *CRoPE: queries,
keys and values as complex-linear maps*.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ropelib.rope import half_split_permutation


def _check_even(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
        raise ValueError(f"{name} must be a positive even integer, got {value!r}")
    return value


def complex_linear_weight(real: Tensor, imag: Tensor) -> Tensor:
    """The real `[2·out, 2·in]` matrix of `real + i·imag` acting on interleaved pairs.

    Derived in the chapter *CRoPE: queries, keys and values as complex-linear maps*.
    """
    if real.dim() != 2 or real.shape != imag.shape:
        raise ValueError(
            "real and imag must be matrices [out/2, in/2] of one shape, got "
            f"{tuple(real.shape)} and {tuple(imag.shape)}"
        )
    out_pairs, in_pairs = real.shape
    top = torch.stack((real, -imag), dim=-1)  # row 2r:   A x_{2c} - B x_{2c+1}
    bottom = torch.stack((imag, real), dim=-1)  # row 2r+1: B x_{2c} + A x_{2c+1}
    return torch.stack((top, bottom), dim=1).reshape(2 * out_pairs, 2 * in_pairs)


# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / The layer
class ComplexLinear(nn.Module):
    """A complex-linear map `[..., in]` -> `[..., out]` on interleaved pairs, real bias.

    Derived in the chapter *CRoPE: queries, keys and values as complex-linear maps*.
    """

    own_init = True  # GPT._init_weights leaves it alone: reset_parameters matches GPT-2

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        out_permutation: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _check_even("in_features", in_features)
        self.out_features = _check_even("out_features", out_features)
        shape = (out_features // 2, in_features // 2)
        self.weight_real = nn.Parameter(torch.empty(shape))
        self.weight_imag = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        order = None
        if out_permutation is not None:
            order = torch.as_tensor(out_permutation, device="cpu").clone()
            if not torch.equal(order.sort().values, torch.arange(out_features)):
                raise ValueError(f"out_permutation must reorder range({out_features})")
        self.register_buffer("out_permutation", order, persistent=False)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02) -> None:
        nn.init.normal_(self.weight_real, std=std)
        nn.init.normal_(self.weight_imag, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def weight(self) -> Tensor:
        """The structured real weight `[out, in]` (rows in the output permutation)."""
        weight = complex_linear_weight(self.weight_real, self.weight_imag)
        return weight if self.out_permutation is None else weight[self.out_permutation]

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have in_features = {self.in_features} channels last, "
                f"got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / Queries,
#    keys and values
def _half_split_rows(n_heads: int, head_dim: int) -> Tensor:
    """Row order putting the complex pairs at (j, j + head_dim/2) inside every head."""
    inverse = half_split_permutation(head_dim).argsort()
    heads = torch.arange(n_heads, device="cpu")[:, None] * head_dim
    return (heads + inverse[None, :]).flatten()


class ComplexQKV(nn.Module):
    """q, k, v `[..., C]` as complex-linear maps of `x [..., C]`; rotate q, k with RoPE.

    Derived in the chapter *CRoPE: queries, keys and values as complex-linear maps*.
    """

    def __init__(
        self,
        d_model: int,
        *,
        bias: bool = True,
        interleaved: bool = True,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.d_model, self.interleaved = (
            _check_even("d_model", d_model),
            bool(interleaved),
        )
        if head_dim is not None and d_model % _check_even("head_dim", head_dim):
            raise ValueError(
                f"head_dim must divide d_model = {d_model}, got {head_dim}"
            )
        if not interleaved and head_dim is None:
            raise ValueError(
                "head_dim is needed with interleaved=False (pairs within heads)"
            )
        self.head_dim = head_dim
        rows = (
            None if interleaved else _half_split_rows(3 * d_model // head_dim, head_dim)
        )
        self.c_attn = ComplexLinear(
            d_model, 3 * d_model, bias=bias, out_permutation=rows
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have d_model = {self.d_model} channels last, "
                f"got shape {tuple(x.shape)}"
            )
        return self.c_attn(x).split(self.d_model, dim=-1)


# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / Counting
#    parameters
def crope_parameter_counts(
    n_embd: int, n_layer: int, vocab_size: int, *, bias: bool = True
) -> dict[str, int]:
    """Parameters of GPT-2 with `rope` and `crope` (neither has position parameters).

    Derived in the chapter *CRoPE: queries, keys and values as complex-linear maps*.
    """
    for name, value in (
        ("n_embd", n_embd),
        ("n_layer", n_layer),
        ("vocab_size", vocab_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    C, per_norm = n_embd, 2 if bias else 1  # a LayerNorm has a weight and maybe a bias
    biases = 9 * C if bias else 0  # qkv 3C, attention out C, MLP 4C and C
    layer = C * C + 8 * C * C + biases + 2 * per_norm * C  # all but Q, K, V weights
    shared = vocab_size * C + per_norm * C + n_layer * layer  # + the final LayerNorm
    return {
        "rope": shared + n_layer * 3 * C * C,
        "crope": shared + n_layer * 3 * C * C // 2,
    }


__all__ = [
    "complex_linear_weight",
    "ComplexLinear",
    "ComplexQKV",
    "crope_parameter_counts",
]
