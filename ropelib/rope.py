# generated from notebooks/01_rope.md by tools/export.py, do not edit

# %% notebooks/01_rope.md: Rotary position embeddings from first principles / Many dimensions:
#    one rotation per pair
"""Rotary position embedding: pairs of query and key channels rotated by m·θ_j.

Standalone (imports torch only): `RotaryEmbedding` in a model, `apply_rope` for a call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _check_even(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
        raise ValueError(f"{name} must be a positive even integer, got {value!r}")
    return value


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / Many dimensions:
#    one rotation per pair
def rope_frequencies(head_dim: int, base: float = 10000.0) -> Tensor:
    """RoPE's frequencies θ_j = base^(-2j/D), j < D/2, as float64 on the CPU.

    Derived in the chapter *Rotary position embeddings from first principles*.
    """
    _check_even("head_dim", head_dim)
    number = isinstance(base, (int, float)) and not isinstance(base, bool)
    if not (number and 1 < base < math.inf):
        raise ValueError(f"base must be a finite number greater than 1, got {base!r}")
    # device="cpu": a model built under `torch.device("meta")` keeps real frequencies
    j = torch.arange(head_dim // 2, dtype=torch.float64, device="cpu")
    return torch.pow(
        torch.tensor(float(base), dtype=torch.float64, device="cpu"),
        -2.0 * j / head_dim,
    )


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def rope_angles(positions: Tensor, frequencies: Tensor) -> Tensor:
    """Angles m·θ_j in float64, shape `[*positions.shape, len(frequencies)]`.

    Derived in the chapter *Rotary position embeddings from first principles*.
    """
    device = _angle_device(positions.device)
    angles = positions.to(device, torch.float64)[..., None]
    return angles * frequencies.to(device, torch.float64)


def _angle_device(device: torch.device) -> torch.device:
    # float64, which MPS lacks, is formed on the CPU there; elsewhere on the device
    return torch.device("cpu") if device.type == "mps" else device


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for half-precision inputs, the input's own dtype otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _cos_sin(angles: Tensor, dtype: torch.dtype, device) -> tuple[Tensor, Tensor]:
    if torch.compiler.is_compiling() and not angles.requires_grad:
        cos, sin = _cos_sin_table(angles, dtype)  # formed once, not fused: see below
        return cos.to(device), sin.to(device)
    return angles.cos().to(device, dtype), angles.sin().to(device, dtype)


@torch.library.custom_op("ropelib::cos_sin_table", mutates_args=())
def _cos_sin_table(angles: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sin of float64 angles as one opaque op of a compiled graph."""
    # contiguous, as the fake below says, whatever the strides of `angles`
    return angles.cos().to(dtype).contiguous(), angles.sin().to(dtype).contiguous()


@_cos_sin_table.register_fake
def _(angles: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return angles.new_empty(angles.shape, dtype=dtype), angles.new_empty(
        angles.shape, dtype=dtype
    )


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
class _HalfSplitRotation(torch.autograd.Function):
    """Rotate pairs (x_j, x_{j+R/2}); the backward pass rotates the gradient back."""

    @staticmethod
    def forward(ctx, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate_half_split(x, cos, sin, sign=1.0)

    @staticmethod
    def backward(ctx, grad: Tensor):
        cos, sin = ctx.saved_tensors
        return _rotate_half_split(grad, cos, sin, sign=-1.0), None, None


def _rotate_half_split(x: Tensor, cos: Tensor, sin: Tensor, sign: float) -> Tensor:
    half = x.shape[-1] // 2
    out = x * torch.cat((cos, cos), dim=-1)  # one contiguous pass: x cos
    out[..., :half].addcmul_(x[..., half:], sin, value=-sign)  # out1 -= x2 sin
    out[..., half:].addcmul_(x[..., :half], sin, value=sign)  # out2 += x1 sin
    return out


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def apply_rotary(
    x: Tensor,
    cos: Tensor,
    sin: Tensor,
    *,
    interleaved: bool = True,
    layout: str = "bhtd",
) -> Tensor:
    """Rotate the pairs of `x [..., R]` by the angles whose `cos`, `sin` are given.

    Derived in the chapter *Rotary position embeddings from first principles*.
    """
    if _seq_axis(layout) == 1:  # tables laid out for [B, H, T, R/2] -> [B, T, H, R/2]
        cos, sin = (
            t.reshape((1,) * (4 - t.dim()) + t.shape).transpose(1, 2)
            for t in (cos, sin)
        )
    if interleaved:
        if torch.compiler.is_compiling():  # no complex view in a compiled graph
            return _rotate_interleaved(x, cos, sin)
        if not _complex_view_ok(x):
            x = x.contiguous()
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # [..., R/2] complex
        rotated = pairs * torch.complex(cos, sin)
        return torch.view_as_real(rotated).flatten(-2)  # [..., R]
    # learned angles: let autograd see everything; compiled: Inductor fuses this form
    if cos.requires_grad or sin.requires_grad or torch.compiler.is_compiling():
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return _HalfSplitRotation.apply(x, cos, sin)


def _complex_view_ok(x: Tensor) -> bool:
    strides_even = all(s % 2 == 0 for s in x.stride()[:-1])
    return x.stride(-1) == 1 and x.storage_offset() % 2 == 0 and strides_even


def _rotate_interleaved(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """The complex product written in real arithmetic, for compiled graphs."""
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)
    rotated = (x0 * cos - x1 * sin, x1 * cos + x0 * sin)  # Re, Im of (x0 + i x1) e^{iα}
    return torch.stack(rotated, dim=-1).flatten(-2)


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def apply_rope(
    x: Tensor,
    positions: Tensor | Sequence[int] | None = None,
    *,
    offset: int = 0,
    interleaved: bool = True,
    rotary_dim: int | None = None,
    base: float = 10000.0,
    frequencies: Tensor | None = None,
    layout: str = "bhtd",
) -> Tensor:
    """Rotate queries or keys `x` (`[B, H, T, D]` or `[B, T, H, D]`) to their positions.

    Derived in the chapter *Rotary position embeddings from first principles*.
    """
    x = _check_tensor(x, layout)
    rotary_dim = _check_rotary_dim(rotary_dim, x.shape[-1])
    offset = _check_offset(offset)
    if frequencies is None:
        frequencies = rope_frequencies(rotary_dim, base)
    frequencies = _check_frequencies(frequencies, rotary_dim)
    if positions is None:
        seq = x.shape[_seq_axis(layout)]
        positions = offset + torch.arange(seq, device=x.device)
    elif offset:
        raise ValueError("pass either positions or offset, not both")
    positions = _check_positions(positions, x, layout)
    cos, sin = _cos_sin(
        rope_angles(positions, frequencies), _compute_dtype(x.dtype), x.device
    )
    if (
        positions.dim() == 2
    ):  # [B, T, R/2] -> [B, 1, T, R/2]: the same angles in every head
        cos, sin = cos[:, None], sin[:, None]
    return _rotate_channels(x, cos, sin, interleaved, rotary_dim, layout)


def _rotate_channels(
    x, cos, sin, interleaved: bool, rotary_dim: int, layout: str
) -> Tensor:
    """Rotate the first `rotary_dim` channels in the compute dtype; pass the rest."""
    part = x[..., :rotary_dim].to(_compute_dtype(x.dtype))
    rotated = apply_rotary(part, cos, sin, interleaved=interleaved, layout=layout)
    rotated = rotated.to(x.dtype)
    if rotary_dim == x.shape[-1]:
        return rotated
    return torch.cat((rotated, x[..., rotary_dim:]), dim=-1)


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
_LAYOUTS = {
    "bhtd": "[batch, heads, seq, head_dim]",
    "bthd": "[batch, seq, heads, head_dim]",
}


def _seq_axis(layout: object) -> int:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'bhtd' or 'bthd', got {layout!r}")
    return 2 if layout == "bhtd" else 1


def _check_tensor(x: object, layout: str = "bhtd", name: str = "x") -> Tensor:
    _seq_axis(layout)
    if not isinstance(x, Tensor):
        kind = type(x).__name__
        raise TypeError(f"{name} must be a torch.Tensor {_LAYOUTS[layout]}, got {kind}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have rank 4, {_LAYOUTS[layout]}; got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_lengths(n_queries: int, n_keys: int, positions: object) -> None:
    if n_queries > n_keys:
        raise ValueError(
            f"q may not be longer than k: got {n_queries} and {n_keys} tokens"
        )
    if positions is not None and n_queries != n_keys:
        raise ValueError(
            f"positions need as many queries as keys, got {n_queries}, {n_keys}"
        )


def _check_head(x: object, name: str, rope: RotaryEmbedding) -> Tensor:
    x = _check_tensor(x, rope.layout, name)
    if x.shape[-1] != rope.head_dim:
        shape = tuple(x.shape)
        raise ValueError(
            f"{name} must have head_dim = {rope.head_dim} last, got {shape}"
        )
    return x


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def _check_rotary_dim(rotary_dim: int | None, head_dim: int) -> int:
    if rotary_dim is None:
        if head_dim % 2:
            raise ValueError(
                f"head_dim must be even to be split into rotation pairs, got "
                f"{head_dim}; pass an even rotary_dim to rotate only part of each head"
            )
        return head_dim
    _check_even("rotary_dim", rotary_dim)
    if rotary_dim > head_dim:
        raise ValueError(
            f"rotary_dim must be at most head_dim = {head_dim}, got {rotary_dim}"
        )
    return rotary_dim


def _check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    return offset


def _check_positions(positions: object, x: Tensor, layout: str = "bhtd") -> Tensor:
    positions = torch.as_tensor(positions, device=x.device)
    if positions.is_complex() or positions.dtype == torch.bool:
        kind = positions.dtype
        raise ValueError(f"positions must be integer or real numbers, got dtype {kind}")
    axis, batch = _seq_axis(layout), x.shape[0]
    seq = x.shape[axis]
    if positions.dim() not in (1, 2) or positions.shape[-1] != seq:
        raise ValueError(
            f"positions must have T = {seq} entries to match the sequence axis (axis "
            f"{axis}) of x {_LAYOUTS[layout]} = {tuple(x.shape)}, got shape "
            f"{tuple(positions.shape)}"
        )
    if positions.dim() == 2 and positions.shape[0] not in (1, batch):
        raise ValueError(
            f"positions [batch, seq] must have batch 1 or {batch}, got "
            f"{tuple(positions.shape)}"
        )
    return positions


def _check_frequencies(frequencies: object, rotary_dim: int) -> Tensor:
    if not isinstance(frequencies, Tensor) or frequencies.shape != (rotary_dim // 2,):
        got = getattr(frequencies, "shape", type(frequencies).__name__)
        raise ValueError(
            f"frequencies must be a tensor of shape [{rotary_dim // 2}], got {got}"
        )
    return frequencies


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / Interleaved or
#    half-split: the same model
def half_split_permutation(head_dim: int) -> Tensor:
    """Indices `perm`: `x_half[..., perm]` is a half-split vector, interleaved.

    Apply it to the rows of each head of W_q and W_k to move a checkpoint from
    half-split (GPT-NeoX, HF LLaMA) to interleaved RoPE; `perm.argsort()` goes back.
    Derived in the chapter *Rotary position embeddings from first principles*.
    """
    half = _check_even("head_dim", head_dim) // 2
    j = torch.arange(half, device="cpu")
    return torch.stack((j, j + half), dim=-1).flatten()


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / A module with a
#    cache
class _AngleCache(nn.Module):
    """cos, sin of (offset + t)·θ_j, cached per (device, dtype), grown by doubling."""

    def __init__(self, frequencies: Tensor, cache_limit: int) -> None:
        super().__init__()
        # A plain float64 CPU tensor, not a buffer: model.half() must not round it.
        self.frequencies = frequencies.detach().to("cpu", torch.float64)
        self.cache_limit = cache_limit
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()  # moved or cast: rebuild lazily where the inputs now live
        return super()._apply(fn, *args, **kwargs)

    def cos_sin(
        self, length: int, *, offset: int = 0, device=None, dtype=torch.float32
    ) -> tuple[Tensor, Tensor]:
        """cos and sin of (offset + t)·θ_j, each `[length, rotary_dim/2]`."""
        device = torch.device("cpu") if device is None else torch.device(device)
        end = offset + length
        # far positions, or a compiled graph (where a growing cache would be a side
        # effect and a guard on its size): form the table, rather than cache it
        if end > self.cache_limit or torch.compiler.is_compiling():
            positions = offset + torch.arange(length, device=device)
            return _cos_sin(rope_angles(positions, self.frequencies), dtype, device)
        cached = self._cache.get((device, dtype))
        if cached is None or cached[0].shape[0] < end:
            have = 0 if cached is None else cached[0].shape[0]
            size = max(2 ** math.ceil(math.log2(max(end, 1))), 2 * have)
            positions = torch.arange(min(size, self.cache_limit), device=device)
            cached = _cos_sin(rope_angles(positions, self.frequencies), dtype, device)
            self._cache[(device, dtype)] = cached
        return cached[0][offset:end], cached[1][offset:end]

    def cos_sin_at(
        self, x: Tensor, positions, offset: int, layout: str = "bhtd"
    ) -> tuple[Tensor, Tensor]:
        """cos and sin for `x`'s tokens: from the cache, or for explicit `positions`."""
        compute = _compute_dtype(x.dtype)
        if positions is None:
            length = x.shape[_seq_axis(layout)]
            return self.cos_sin(length, offset=offset, device=x.device, dtype=compute)
        if offset:
            raise ValueError("pass either positions or offset, not both")
        positions = _check_positions(positions, x, layout)
        cos, sin = _cos_sin(rope_angles(positions, self.frequencies), compute, x.device)
        return (cos[:, None], sin[:, None]) if positions.dim() == 2 else (cos, sin)


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / A module with a
#    cache
class RotaryEmbedding(_AngleCache):
    """RoPE for `[B, H, T, D]` (or `layout="bthd"`) queries and keys, cos/sin cached.

    Derived in the chapter *Rotary position embeddings from first principles*.
    """

    def __init__(
        self,
        head_dim: int,
        *,
        base: float = 10000.0,
        interleaved: bool = True,
        rotary_dim: int | None = None,
        frequencies: Tensor | None = None,
        cache_limit: int = 2**16,
        layout: str = "bhtd",
    ) -> None:
        if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
            raise ValueError(f"head_dim must be a positive integer, got {head_dim!r}")
        rotary_dim = _check_rotary_dim(rotary_dim, head_dim)
        if frequencies is None:
            frequencies = rope_frequencies(rotary_dim, base)
        super().__init__(_check_frequencies(frequencies, rotary_dim), cache_limit)
        self.head_dim, self.rotary_dim = head_dim, rotary_dim
        self.interleaved, self.layout = bool(interleaved), layout
        self._axis = _seq_axis(layout)

    def extra_repr(self) -> str:
        dims = f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}"
        return f"{dims}, interleaved={self.interleaved}, layout={self.layout!r}"

    def forward(
        self, x: Tensor, positions: Tensor | None = None, *, offset: int = 0
    ) -> Tensor:
        """Rotate `x` to positions `offset + arange(T)` or to explicit `positions`."""
        x = _check_head(x, "x", self)
        cos, sin = self.cos_sin_at(x, positions, _check_offset(offset), self.layout)
        return self._rotate(x, cos, sin)

    def rotate_queries_and_keys(
        self, q: Tensor, k: Tensor, positions: Tensor | None = None, *, offset: int = 0
    ) -> tuple[Tensor, Tensor]:
        """Rotate `q` (Tq) and `k` (Tk >= Tq); the queries take the last positions."""
        q, k = _check_head(q, "q", self), _check_head(k, "k", self)
        offset = _check_offset(offset)
        n_queries, n_keys = q.shape[self._axis], k.shape[self._axis]
        _check_lengths(n_queries, n_keys, positions)
        if positions is None:
            return self(q, offset=offset + n_keys - n_queries), self(k, offset=offset)
        # one table, shared by q and k
        cos, sin = self.cos_sin_at(k, positions, offset, self.layout)
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin)

    def _rotate(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        return _rotate_channels(
            x, cos, sin, self.interleaved, self.rotary_dim, self.layout
        )


__all__ = [
    "apply_rope",
    "apply_rotary",
    "half_split_permutation",
    "rope_angles",
    "rope_frequencies",
    "RotaryEmbedding",
]
