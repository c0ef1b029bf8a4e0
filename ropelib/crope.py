# generated from notebooks/05_crope.md by tools/export.py, do not edit

# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / The layer
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ropelib.model import GPTConfig, RoPE, register_scheme
from ropelib.rope import half_split_permutation
from ropelib.train import PRESETS, TrainConfig, register_experiment


def complex_linear_weight(real: Tensor, imag: Tensor) -> Tensor:
    """The real `[2·out, 2·in]` matrix of `real + i·imag` acting on interleaved pairs.

    Block (r, c) is [[A, -B], [B, A]]. Derived in notebooks/05_crope.md.
    """
    out_pairs, in_pairs = real.shape
    top = torch.stack((real, -imag), dim=-1)  # row 2r:   A x_{2c} - B x_{2c+1}
    bottom = torch.stack((imag, real), dim=-1)  # row 2r+1: B x_{2c} + A x_{2c+1}
    return torch.stack((top, bottom), dim=1).reshape(2 * out_pairs, 2 * in_pairs)


class ComplexLinear(nn.Module):
    """A complex-linear map C^(in/2) -> C^(out/2) on interleaved pairs, plus a real bias.

    `out_permutation` reorders the output channels (e.g. to the half-split pairing of each
    head). Derived in notebooks/05_crope.md.
    """

    own_init = True  # GPT._init_weights leaves it alone: the init below matches GPT-2's variance

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        out_permutation: Tensor | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
                raise ValueError(f"{name} must be a positive even integer, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight_real = nn.Parameter(torch.empty(out_features // 2, in_features // 2))
        self.weight_imag = nn.Parameter(torch.empty(out_features // 2, in_features // 2))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        if out_permutation is not None:
            self.register_buffer("out_permutation", out_permutation.clone(), persistent=False)
        else:
            self.out_permutation = None
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
        return F.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / The layer
class ComplexQKV(nn.Module):
    """Complex-linear query, key and value projections: `x [B, T, C]` -> q, k, v `[B, T, C]`."""

    def __init__(self, config: GPTConfig, interleaved: bool = True) -> None:
        super().__init__()
        C, D = config.n_embd, config.head_dim
        permutation = None
        if not interleaved:  # pairs (j, j + D/2) inside every head of q, k and v
            inverse = half_split_permutation(D).argsort()
            heads = torch.arange(3 * C // D, device="cpu")[:, None] * D
            permutation = (heads + inverse[None, :]).flatten()
        self.c_attn = ComplexLinear(C, 3 * C, bias=config.bias, out_permutation=permutation)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.c_attn(x).split(x.shape[-1], dim=-1)


@register_scheme("crope")
class CRoPE(RoPE):
    """CRoPE: RoPE with complex-linear Q/K/V projections. Derived in notebooks/05_crope.md."""

    rotary = True

    def __init__(self, config: GPTConfig, layer: int | None = None, interleaved: bool = True):
        super().__init__(config, layer, interleaved=interleaved)
        self.interleaved = interleaved

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        if config.n_embd % 2:
            raise ValueError(f"pe='crope' needs an even n_embd, got {config.n_embd}")

    def projection(self, config: GPTConfig) -> nn.Module:
        return ComplexQKV(config, interleaved=self.interleaved)


def crope_parameter_counts(n_embd: int, n_layer: int, vocab_size: int, bias: bool = True) -> dict:
    """Parameter counts of GPT-2 with `rope` and with `crope` (no position parameters in either).

    Per layer: attention 4C² (rope) or 1.5C² + C² (crope), MLP 8C², LayerNorms and biases.
    Derived in notebooks/05_crope.md.
    """
    C = n_embd
    biases = (3 * C + C + 4 * C + C) if bias else 0  # qkv, attn proj, mlp fc, mlp proj
    norms = (2 if bias else 1) * 2 * C
    shared = (
        vocab_size * C + (2 if bias else 1) * C + n_layer * (C * C + 8 * C * C + biases + norms)
    )
    return {"rope": shared + n_layer * 3 * C * C, "crope": shared + n_layer * 3 * C * C // 2}


# %% notebooks/05_crope.md: CRoPE: queries, keys and values as complex-linear maps / Experiment:
#    does the halved projection cost accuracy?
CROPE_EXPERIMENT = dict(
    n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=16, max_iters=400,
    lr=1e-3, schedule="step", gamma=0.8, step_size=40, warmup_iters=0, weight_decay=0.01,
    vocab_size=4096, eval_interval=50, eval_iters=10, checkpoint_interval=100,
)  # fmt: skip


@register_experiment("crope", seeds=3)
def crope_experiment(quick: bool) -> dict[str, TrainConfig]:
    """RoPE vs CRoPE vs learned absolute at the CRoPE paper's model shape, two corpora."""
    base = dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3) if quick else CROPE_EXPERIMENT
    return {
        f"{pe} {corpus}": TrainConfig(**{**base, "pe": pe, "corpus": corpus})
        for corpus in ("shakespeare", "bible")
        for pe in ("rope", "crope", "learned")
    }


__all__ = [
    "complex_linear_weight",
    "ComplexLinear",
    "ComplexQKV",
    "CRoPE",
    "CROPE_EXPERIMENT",
    "crope_experiment",
    "crope_parameter_counts",
]
