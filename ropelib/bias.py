# generated from notebooks/04_bias.md by tools/export.py, do not edit

# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / A
#    bias instead of a rotation
"""Position as a bias on the logits (ALiBi, T5's bucketed bias) and truncated RoPE.

Standalone: imports torch and `ropelib.rope` only. Derived in the chapter *Position as a
bias on the logits: ALiBi, T5 and truncated RoPE*.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ropelib.rope import RotaryEmbedding, rope_frequencies


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_position_vector(name: str, positions: object, integer: bool) -> Tensor:
    if not isinstance(positions, Tensor):
        positions = torch.as_tensor(positions)
    bad = positions.is_complex() or positions.dtype == torch.bool
    if integer and positions.is_floating_point():
        bad = True
    if bad or positions.dim() != 1:
        kind = "integers" if integer else "real numbers"
        raise ValueError(
            f"{name} must be a 1-D tensor [T] of {kind}, got dtype {positions.dtype} "
            f"and shape {tuple(positions.shape)}"
        )
    return positions


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / A
#    bias instead of a rotation
def relative_distances(
    q_positions: Tensor, k_positions: Tensor, *, integer: bool = False
) -> Tensor:
    """`m - n` for the queries at `q_positions [Tq]` and keys at `k_positions [Tk]`.

    `[Tq, Tk]`, int64 for `integer=True` (integer positions required), else float64.
    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """
    m = _check_position_vector("q_positions", q_positions, integer)
    n = _check_position_vector("k_positions", k_positions, integer)
    dtype = torch.int64 if integer else torch.float64
    if m.device.type == "mps" and not integer:  # MPS has no float64
        dtype = torch.float32
    return m.to(dtype)[:, None] - n.to(m.device, dtype)[None, :]


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / The
#    slopes
def alibi_slopes(n_heads: int) -> Tensor:
    """ALiBi's slopes s_h, float64 `[n_heads]`: 2^(-8h/H), interpolated for other H.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """
    n_heads = _check_count("n_heads", n_heads)
    below = 2 ** int(math.floor(math.log2(n_heads)))  # the power of two <= n_heads
    h = torch.arange(1, below + 1, dtype=torch.float64)
    slopes = torch.pow(2.0, -8.0 * h / below)
    if below == n_heads:
        return slopes
    odd = torch.arange(1, 2 * (n_heads - below), 2, dtype=torch.float64)
    return torch.cat((slopes, torch.pow(2.0, -8.0 * odd / (2 * below))))


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / Why
#    a linear bias extrapolates
class ALiBi(nn.Module):
    """ALiBi's bias -s_h |m - n| for `n_heads` heads; no parameters.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n_heads = _check_count("n_heads", n_heads)
        self.slopes = alibi_slopes(n_heads)  # float64 on the CPU: .half() keeps it

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}"

    def bias(
        self,
        q_positions: Tensor,
        k_positions: Tensor,
        *,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> Tensor:
        """The bias `[H, Tq, Tk]` in float64, returned as `dtype` on `device`."""
        distance = relative_distances(q_positions, k_positions).abs()
        slopes = self.slopes.to(distance.device, distance.dtype)
        bias = -slopes[:, None, None] * distance
        return bias.to(device=device or distance.device, dtype=dtype)

    def forward(self, q_positions: Tensor, k_positions: Tensor) -> Tensor:
        return self.bias(q_positions, k_positions)


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / T5:
#    a learned scalar per bucket of distances
def t5_relative_bucket(
    distance: Tensor,
    *,
    num_buckets: int = 32,
    max_distance: int = 128,
    bidirectional: bool = False,
) -> Tensor:
    """T5's bucket (int64, same shape) of each integer distance m - n, query minus key.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """
    n, exact = _check_buckets(num_buckets, max_distance, bidirectional)
    if not isinstance(distance, Tensor) or distance.is_floating_point():
        raise ValueError("distance must be an integer tensor of m - n")
    offset = torch.zeros_like(distance)
    if bidirectional:  # keys after the query (m - n < 0) take the upper half
        offset = (distance < 0).to(torch.int64) * n
        distance = distance.abs()
    else:
        distance = distance.clamp(min=0)
    ratio = distance.clamp(min=exact).to(torch.float64) / exact
    wide = torch.log(ratio) / math.log(max_distance / exact) * (n - exact)
    wide = (exact + wide.to(torch.int64)).clamp(max=n - 1)
    return offset + torch.where(distance < exact, distance, wide)


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / T5:
#    a learned scalar per bucket of distances
def _check_buckets(
    num_buckets: object, max_distance: object, bidirectional: object
) -> tuple[int, int]:
    """(buckets of one direction, exact buckets) after checking the arguments."""
    if not isinstance(bidirectional, bool):
        raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
    _check_count("num_buckets", num_buckets)
    _check_count("max_distance", max_distance)
    if bidirectional and num_buckets % 2:
        raise ValueError(
            f"num_buckets must be even if bidirectional, got {num_buckets}"
        )
    n = num_buckets // 2 if bidirectional else num_buckets
    if n < 2:
        raise ValueError(f"num_buckets must give >= 2 per direction, got {num_buckets}")
    exact = n // 2
    if max_distance <= exact:
        raise ValueError(
            f"max_distance must exceed the {exact} exact buckets, got {max_distance}"
        )
    return n, exact


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / T5:
#    a learned scalar per bucket of distances
class T5RelativeBias(nn.Module):
    """T5's learned bias table[bucket(m - n), h] `[num_buckets, n_heads]`.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """

    def __init__(
        self,
        n_heads: int,
        *,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        _check_buckets(num_buckets, max_distance, bidirectional)
        self.n_heads = _check_count("n_heads", n_heads)
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.bidirectional = bidirectional
        self.relative_attention_bias = nn.Parameter(torch.zeros(num_buckets, n_heads))

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, num_buckets={self.num_buckets}, "
            f"max_distance={self.max_distance}, bidirectional={self.bidirectional}"
        )

    def no_weight_decay(self) -> set[str]:
        return {"relative_attention_bias"}

    def buckets(self, q_positions: Tensor, k_positions: Tensor) -> Tensor:
        """The bucket `[Tq, Tk]` of every query and key (integer positions)."""
        distance = relative_distances(q_positions, k_positions, integer=True)
        return t5_relative_bucket(
            distance,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
            bidirectional=self.bidirectional,
        )

    def bias(self, q_positions: Tensor, k_positions: Tensor) -> Tensor:
        """The bias `[H, Tq, Tk]`, in the table's dtype and on its device."""
        table = self.relative_attention_bias
        buckets = self.buckets(q_positions, k_positions).to(table.device)
        return table[buckets].permute(2, 0, 1)

    def forward(self, q_positions: Tensor, k_positions: Tensor) -> Tensor:
        return self.bias(q_positions, k_positions)


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE /
#    Truncated RoPE: no rotation for the lowest frequencies
def partial_rope_frequencies(
    head_dim: int, keep_fraction: float = 0.75, base: float = 10000.0
) -> Tensor:
    """p-RoPE's frequencies: RoPE's θ_j for the ⌊p·D/2⌋ highest, 0 for the rest.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """
    number = isinstance(keep_fraction, (int, float)) and not isinstance(
        keep_fraction, bool
    )
    if not (number and 0 <= keep_fraction <= 1):
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction!r}")
    frequencies = rope_frequencies(head_dim, base).clone()
    frequencies[int(keep_fraction * head_dim // 2) :] = 0.0  # Barbero et al.'s count
    return frequencies


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE /
#    Truncated RoPE: no rotation for the lowest frequencies
class PartialRoPE(RotaryEmbedding):
    """p-RoPE: RoPE on the highest ⌊p·D/2⌋ pairs, the lowest-frequency pairs unrotated.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """

    def __init__(
        self,
        head_dim: int,
        *,
        keep_fraction: float = 0.75,
        base: float = 10000.0,
        interleaved: bool = True,
        layout: str = "bhtd",
    ) -> None:
        frequencies = partial_rope_frequencies(head_dim, keep_fraction, base)
        self.keep_fraction = float(keep_fraction)
        self.kept_pairs = int(keep_fraction * head_dim // 2)
        super().__init__(
            head_dim,
            base=base,
            interleaved=interleaved,
            frequencies=frequencies,
            layout=layout,
        )

    @property
    def frequencies(self) -> Tensor:
        return self._frequencies

    @frequencies.setter
    def frequencies(self, value: Tensor) -> None:
        """Any frequencies assigned (context extension) lose their lowest pairs too."""
        value = value.detach().to("cpu", torch.float64).clone()
        value[self.kept_pairs :] = 0.0
        self._frequencies = value
        getattr(self, "_cache", {}).clear()  # cos/sin of the old frequencies

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kept_pairs={self.kept_pairs}"


# %% notebooks/04_bias.md: Position as a bias on the logits: ALiBi, T5 and truncated RoPE / What
#    modded-nanogpt does
def half_truncated_frequencies(head_dim: int, lowest: float = 1 / 1024) -> Tensor:
    """modded-nanogpt's half-truncated RoPE: D/4 frequencies 1 ... `lowest`, D/4 zeros.

    Derived in the chapter *Position as a bias on the logits: ALiBi, T5 and truncated
    RoPE*.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim % 4:
        raise ValueError(f"head_dim must be a positive multiple of 4, got {head_dim!r}")
    if head_dim < 8 or not (isinstance(lowest, (int, float)) and 0 < lowest < 1):
        raise ValueError(f"need head_dim >= 8 and 0 < lowest < 1, got {lowest!r}")
    quarter = head_dim // 4
    kept = lowest ** torch.linspace(0, 1, quarter, dtype=torch.float64)
    return torch.cat((kept, torch.zeros(quarter, dtype=torch.float64)))


__all__ = [
    "ALiBi",
    "alibi_slopes",
    "half_truncated_frequencies",
    "partial_rope_frequencies",
    "PartialRoPE",
    "relative_distances",
    "t5_relative_bucket",
    "T5RelativeBias",
]
