# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations composed by a scan / The
#    associative scan
"""Ordered prefix products of matrices by a parallel scan. Derived in notebooks/08_hdd_rope.md."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _check_matrices(matrices: object) -> Tensor:
    if not isinstance(matrices, Tensor) or matrices.dim() < 3:
        raise ValueError("matrices must be a tensor [..., T, ..., n, n] of square matrices")
    if matrices.shape[-1] != matrices.shape[-2]:
        raise ValueError(
            f"matrices must be square in the last two dimensions, got {tuple(matrices.shape)}"
        )
    return matrices


def _sequence_dim(matrices: Tensor, dim: int) -> int:
    if not -matrices.dim() <= dim < matrices.dim():
        raise ValueError(f"dim {dim} is out of range for {matrices.dim()}-D matrices")
    dim = dim % matrices.dim()
    if dim >= matrices.dim() - 2:
        raise ValueError("dim must not be one of the two matrix dimensions")
    return dim


def _hillis_steele(x: Tensor, op: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Prefix products of `x` along dim 0 in ceil(log2 T) rounds (T log T products)."""
    offset, length = 1, x.shape[0]
    while offset < length:
        # entry t (>= offset) becomes (product ending at t - offset) · (product ending at t)
        x = torch.cat((x[:offset], op(x[:-offset], x[offset:])), dim=0)
        offset *= 2
    return x


def _work_efficient(x: Tensor, op: Callable[[Tensor, Tensor], Tensor], base: int = 16) -> Tensor:
    """Prefix products of `x` along dim 0 with 2T products: pair, recurse, fill in."""
    length = x.shape[0]
    if length <= base:
        return _hillis_steele(x, op)
    half = length // 2
    pairs = op(x[0 : 2 * half : 2], x[1 : 2 * half : 2])  # M_{2i} M_{2i+1}
    odd = _work_efficient(pairs, op, base)  # prefixes ending at positions 1, 3, 5, ...
    even = torch.cat((x[:1], op(odd[: (length - 1) // 2], x[2::2])), dim=0)
    out = torch.stack((even[:half], odd), dim=1).flatten(0, 1)  # interleave
    return torch.cat((out, even[half:]), dim=0) if length % 2 else out


def prefix_scan(x: Tensor, op: Callable[[Tensor, Tensor], Tensor], dim: int = 0) -> Tensor:
    """Inclusive prefix products `out[t] = x[0] · x[1] · ... · x[t]` along `dim` for any
    associative, batched `op` (matrices under `@`, quaternions under the Hamilton product).

    Work-efficient recursion (2T products, 2 log2 T rounds); differentiable.
    Derived in notebooks/08_hdd_rope.md.
    """
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("x must be a tensor with a sequence dimension")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} is out of range for a {x.dim()}-D tensor")
    return _work_efficient(x.movedim(dim, 0), op).movedim(0, dim)


def associative_scan(matrices: Tensor, dim: int = -3) -> Tensor:
    """Inclusive ordered prefix products `out[t] = M[0] @ M[1] @ ... @ M[t]` along `dim`.

    Derived in notebooks/08_hdd_rope.md.
    """
    matrices = _check_matrices(matrices)
    return prefix_scan(matrices, torch.matmul, _sequence_dim(matrices, dim))


def sequential_scan(matrices: Tensor, dim: int = -3) -> Tensor:
    """The same prefix products by a loop over positions: the reference the scan must equal."""
    matrices = _check_matrices(matrices)
    dim = _sequence_dim(matrices, dim)
    x = matrices.movedim(dim, -3)
    outputs = [x[..., 0, :, :]]
    for t in range(1, x.shape[-3]):
        outputs.append(outputs[-1] @ x[..., t, :, :])
    return torch.stack(outputs, dim=-3).movedim(-3, dim)


__all__ = [
    "associative_scan",
    "prefix_scan",
    "sequential_scan",
]
