# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The associative scan
"""Prefix products by a parallel scan. Chapter *HDD-RoPE: data-dependent rotations*."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.fx.experimental.symbolic_shapes import has_static_value

Product = Callable[[Tensor, Tensor], Tensor]  # an associative, batched product


def _hillis_steele(x: Tensor, op: Product) -> Tensor:
    """Prefix products of `x` along dim 0 in ceil(log2 T) rounds (T log T products)."""
    offset, length = 1, x.shape[0]
    while offset < length:
        # entry t >= offset: (product ending at t - offset) · (product ending at t)
        x = torch.cat((x[:offset], op(x[:-offset], x[offset:])), dim=0)
        offset *= 2
    return x


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The associative scan
def _work_efficient(x: Tensor, op: Product, base: int = 16) -> Tensor:
    """Prefix products of `x` along dim 0 with 2T products: pair, recurse, fill in."""
    length = x.shape[0]
    if length <= base:
        return _hillis_steele(x, op)
    half = length // 2
    pairs = op(x[0 : 2 * half : 2], x[1 : 2 * half : 2])  # P_i = M_{2i-1} M_{2i}
    even = _work_efficient(pairs, op, base)  # H_2, H_4, H_6, ...
    odd = torch.cat(
        (x[:1], op(even[: (length - 1) // 2], x[2::2])), dim=0
    )  # H_1, H_3, ...
    out = torch.stack((odd[:half], even), dim=1).flatten(0, 1)  # interleave
    return torch.cat((out, odd[half:]), dim=0) if length % 2 else out


def prefix_scan(x: Tensor, op: Product, dim: int = 0) -> Tensor:
    """`x[0] · ... · x[t]` along `dim`. Chapter *HDD-RoPE: data-dependent rotations*."""
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("x must be a tensor with a sequence dimension")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} is out of range for a {x.dim()}-D tensor")
    x = x.movedim(dim, 0)
    if not has_static_value(x.shape[0]):  # traced with a dynamic length
        return _length_agnostic_scan(x, op).movedim(0, dim)
    return _work_efficient(x, op).movedim(0, dim)


def associative_scan(matrices: Tensor, dim: int = -3) -> Tensor:
    """`M[0] @ ... @ M[t]` along `dim`. Chapter *HDD-RoPE: data-dependent rotations*."""
    matrices, dim = _check_matrices(matrices, dim)
    return prefix_scan(matrices, torch.matmul, dim)


def sequential_scan(matrices: Tensor, dim: int = -3) -> Tensor:
    """The same by a loop. Chapter *HDD-RoPE: data-dependent rotations*."""
    matrices, dim = _check_matrices(matrices, dim)
    x = matrices.movedim(dim, -3)
    outputs = [x[..., 0, :, :]]
    for t in range(1, x.shape[-3]):
        outputs.append(outputs[-1] @ x[..., t, :, :])
    return torch.stack(outputs, dim=-3).movedim(-3, dim)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The associative scan
def _check_matrices(matrices: object, dim: int) -> tuple[Tensor, int]:
    if not isinstance(matrices, Tensor) or matrices.dim() < 3:
        raise ValueError(
            "matrices must be a tensor [..., T, ..., n, n] of square matrices"
        )
    if matrices.shape[-1] != matrices.shape[-2]:
        shape = tuple(matrices.shape)
        raise ValueError(
            f"matrices must be square in the last two dimensions, got {shape}"
        )
    if not -matrices.dim() <= dim < matrices.dim():
        raise ValueError(f"dim {dim} is out of range for {matrices.dim()}-D matrices")
    if dim % matrices.dim() >= matrices.dim() - 2:
        raise ValueError("dim must not be one of the two matrix dimensions")
    return matrices, dim % matrices.dim()


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The associative scan
_BLOCK = 64  # positions per block, scanned along an axis of fixed length
_MAX_LENGTH = 2**20  # the most positions a graph with a dynamic length scans
_ROUNDS = (_MAX_LENGTH // _BLOCK).bit_length() - 1  # 14, for 2**14 block totals


def _masked_round(x: Tensor, op: Product, offset: int, index: Tensor, mask: Tensor):
    """`op(x[i - offset], x[i])` where `mask`, `x[i]` elsewhere; nothing sized by T."""
    earlier = x.index_select(0, (index - offset).clamp_min(0))
    return torch.where(mask, op(earlier, x), x)


def _length_agnostic_scan(x: Tensor, op: Product) -> Tensor:
    """Prefix products of `x` along dim 0 by one graph for every length <= 2**20."""
    length, rest = x.shape[0], x.shape[1:]
    torch._check(
        length <= _MAX_LENGTH,
        lambda: (
            "a compiled prefix_scan with a dynamic length scans at most 2**20 "
            "positions; run a longer one eagerly or compile it for its fixed length"
        ),
    )

    def blockwise(a: Tensor, b: Tensor) -> Tensor:  # op on [k, n, ...] as [k * n, ...]
        return op(a.flatten(0, 1), b.flatten(0, 1)).view(a.shape)

    n = (length + _BLOCK - 1) // _BLOCK + 1  # one block more: n is never 1
    padded = torch.arange(n * _BLOCK, device=x.device).clamp_max(length - 1)
    y = x.index_select(0, padded).view(n, _BLOCK, *rest).transpose(0, 1).contiguous()
    y = _work_efficient(y, blockwise)  # within every block: [64, n, ...]
    block = torch.arange(n, device=x.device)
    ones = (1,) * len(rest)  # masks broadcast over the product's dimensions
    totals = y[-1]  # the product of each block
    for r in range(_ROUNDS):  # Hillis-Steele over the block totals
        totals = _masked_round(totals, op, 2**r, block, (block >= 2**r).view(-1, *ones))
    before = totals.index_select(0, (block - 1).clamp_min(0)).expand_as(y)
    y = torch.where((block >= 1).view(1, -1, *ones), blockwise(before, y), y)
    return y.transpose(0, 1).flatten(0, 1)[:length]


__all__ = [
    "associative_scan",
    "prefix_scan",
    "Product",
    "sequential_scan",
]
