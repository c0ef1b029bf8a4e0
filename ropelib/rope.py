# generated from notebooks/01_rope.md, notebooks/09_long_context.md by tools/export.py, do not edit

# %% notebooks/01_rope.md: Rotary position embeddings from first principles / Many dimensions:
#    one rotation per pair
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _check_even(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
        raise ValueError(f"{name} must be a positive even integer, got {value!r}")
    return value


def rope_frequencies(head_dim: int, base: float = 10000.0) -> Tensor:
    """RoPE's frequencies θ_j = base^(-2j/head_dim), j < head_dim/2, as a float64 CPU tensor.

    Derived in notebooks/01_rope.md.
    """
    _check_even("head_dim", head_dim)
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base):
        raise ValueError(f"base must be a finite number greater than 1, got {base!r}")
    if base <= 1:
        raise ValueError(f"base must be a finite number greater than 1, got {base!r}")
    # device="cpu": a model built under `with torch.device("meta")` keeps real frequencies
    j = torch.arange(head_dim // 2, dtype=torch.float64, device="cpu")
    return torch.pow(
        torch.tensor(float(base), dtype=torch.float64, device="cpu"), -2.0 * j / head_dim
    )


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Rotations run in fp32 for half-precision inputs and in the input's dtype otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _angle_device(device: torch.device) -> torch.device:
    # Angles are formed in float64, which MPS lacks; everywhere else they stay on the device.
    return torch.device("cpu") if device.type == "mps" else device


def rope_angles(positions: Tensor, frequencies: Tensor) -> Tensor:
    """Angles m·θ_j in float64, shape `[*positions.shape, len(frequencies)]`.

    Derived in notebooks/01_rope.md.
    """
    device = _angle_device(positions.device)
    return positions.to(device, torch.float64)[..., None] * frequencies.to(device, torch.float64)


def _cos_sin(angles: Tensor, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    return angles.cos().to(device, dtype), angles.sin().to(device, dtype)


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


def _complex_view_ok(x: Tensor) -> bool:
    return (
        x.stride(-1) == 1
        and x.storage_offset() % 2 == 0
        and all(s % 2 == 0 for s in x.stride()[:-1])
    )


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor, *, interleaved: bool = True) -> Tensor:
    """Rotate the pairs of `x [..., R]` by the angles whose `cos`, `sin` broadcast to `[..., R/2]`.

    The kernel behind `apply_rope`; `x`, `cos` and `sin` share the compute dtype.
    Derived in notebooks/01_rope.md.
    """
    if interleaved:
        if not _complex_view_ok(x):
            x = x.contiguous()
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # [..., R/2] complex
        return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)  # [..., R]
    if cos.requires_grad or sin.requires_grad:  # learned angles: let autograd see everything
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return _HalfSplitRotation.apply(x, cos, sin)


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / The implementation
def _check_tensor(x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"x must be a torch.Tensor [batch, heads, seq, head_dim], got {type(x).__name__}"
        )
    if x.dim() != 4:
        raise ValueError(
            f"x must have rank 4, [batch, heads, seq, head_dim]; got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_rotary_dim(rotary_dim: int | None, head_dim: int) -> int:
    if rotary_dim is None:
        if head_dim % 2:
            raise ValueError(
                f"head_dim must be even to be split into rotation pairs, got {head_dim}; "
                "pass an even rotary_dim to rotate only part of each head"
            )
        return head_dim
    _check_even("rotary_dim", rotary_dim)
    if rotary_dim > head_dim:
        raise ValueError(f"rotary_dim must be at most head_dim = {head_dim}, got {rotary_dim}")
    return rotary_dim


def _check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    return offset


def _check_positions(positions: object, x: Tensor) -> Tensor:
    positions = torch.as_tensor(positions, device=x.device)
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"positions must be an integer tensor, got dtype {positions.dtype}")
    batch, _, seq, _ = x.shape
    if positions.shape not in ((seq,), (batch, seq), (1, seq)):
        raise ValueError(
            f"positions must have shape [seq] or [batch, seq] = [{seq}] or [{batch}, {seq}], "
            f"got {tuple(positions.shape)}"
        )
    return positions


def _check_frequencies(frequencies: Tensor, rotary_dim: int) -> Tensor:
    if not isinstance(frequencies, Tensor) or frequencies.shape != (rotary_dim // 2,):
        shape = (
            tuple(frequencies.shape)
            if isinstance(frequencies, Tensor)
            else type(frequencies).__name__
        )
        raise ValueError(f"frequencies must be a tensor of shape [{rotary_dim // 2}], got {shape}")
    return frequencies


def _rotate_channels(
    x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool, rotary_dim: int
) -> Tensor:
    compute = _compute_dtype(x.dtype)
    rotated = apply_rotary(x[..., :rotary_dim].to(compute), cos, sin, interleaved=interleaved).to(
        x.dtype
    )
    if rotary_dim == x.shape[-1]:
        return rotated
    return torch.cat((rotated, x[..., rotary_dim:]), dim=-1)


def apply_rope(
    x: Tensor,
    positions: Tensor | Sequence[int] | None = None,
    *,
    offset: int = 0,
    interleaved: bool = True,
    rotary_dim: int | None = None,
    base: float = 10000.0,
    frequencies: Tensor | None = None,
) -> Tensor:
    """Rotate queries or keys `x [B, H, T, D]` to their positions (RoPE); returns x's dtype.

    Positions are `offset + arange(T)` unless given as integers of shape `[T]` or `[B, T]`.
    `interleaved` pairs channels (2j, 2j+1), otherwise (j, j+R/2); `rotary_dim` rotates the first
    R channels only; `frequencies` (float64 `[R/2]`) replaces base^(-2j/R), e.g. for context
    extension. Derived in notebooks/01_rope.md.
    """
    x = _check_tensor(x)
    rotary_dim = _check_rotary_dim(rotary_dim, x.shape[-1])
    offset = _check_offset(offset)
    if frequencies is None:
        frequencies = rope_frequencies(rotary_dim, base)
    frequencies = _check_frequencies(frequencies, rotary_dim)
    if positions is None:
        positions = torch.arange(offset, offset + x.shape[-2], device=x.device)
    elif offset:
        raise ValueError("pass either positions or offset, not both")
    positions = _check_positions(positions, x)
    cos, sin = _cos_sin(rope_angles(positions, frequencies), _compute_dtype(x.dtype), x.device)
    if positions.dim() == 2:  # [B, T, R/2] -> [B, 1, T, R/2]: the same positions in every head
        cos, sin = cos[:, None], sin[:, None]
    return _rotate_channels(x, cos, sin, interleaved, rotary_dim)


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / Interleaved or
#    half-split: the same model
def half_split_permutation(head_dim: int) -> Tensor:
    """Indices `perm` with `x_half[..., perm]` = the interleaved layout of a half-split vector.

    Apply it to the rows of each head of W_q and W_k to move a checkpoint from half-split
    (GPT-NeoX, HF LLaMA) to interleaved RoPE; `perm.argsort()` goes back. Derived in
    notebooks/01_rope.md.
    """
    half = _check_even("head_dim", head_dim) // 2
    j = torch.arange(half, device="cpu")
    return torch.stack((j, j + half), dim=-1).flatten()


# %% notebooks/01_rope.md: Rotary position embeddings from first principles / A module with a
#    cache
class RotaryEmbedding(nn.Module):
    """RoPE for `[B, H, T, D]` queries and keys, with a per-device cos/sin cache.

    Derived in notebooks/01_rope.md.
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
    ) -> None:
        super().__init__()
        if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
            raise ValueError(f"head_dim must be a positive integer, got {head_dim!r}")
        self.head_dim = head_dim
        self.rotary_dim = _check_rotary_dim(rotary_dim, head_dim)
        self.interleaved = bool(interleaved)
        if frequencies is None:
            frequencies = rope_frequencies(self.rotary_dim, base)
        # A plain float64 CPU tensor, not a buffer: model.half() must not round it.
        self.frequencies = (
            _check_frequencies(frequencies, self.rotary_dim).detach().to("cpu", torch.float64)
        )
        self.cache_limit = cache_limit
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def extra_repr(self) -> str:
        dims = f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}"
        return f"{dims}, interleaved={self.interleaved}"

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()  # moved or cast: rebuild lazily where the inputs now live
        return super()._apply(fn, *args, **kwargs)

    def cos_sin(
        self, length: int, *, offset: int = 0, device=None, dtype=torch.float32
    ) -> tuple[Tensor, Tensor]:
        """cos and sin of (offset + t)·θ_j, each `[length, rotary_dim/2]`, from the cache."""
        device = torch.device("cpu") if device is None else torch.device(device)
        end = offset + length
        if end > self.cache_limit:  # far positions: compute directly rather than cache a huge table
            return _cos_sin(
                rope_angles(torch.arange(offset, end, device=device), self.frequencies),
                dtype,
                device,
            )
        key = (device, dtype)
        cached = self._cache.get(key)
        if cached is None or cached[0].shape[0] < end:
            size = min(
                self.cache_limit,
                max(
                    2 ** math.ceil(math.log2(max(end, 1))),
                    2 * (0 if cached is None else cached[0].shape[0]),
                ),
            )
            positions = torch.arange(size, device=_angle_device(device))
            cached = self._cache[key] = _cos_sin(
                rope_angles(positions, self.frequencies), dtype, device
            )
        return cached[0][offset:end], cached[1][offset:end]

    def forward(self, x: Tensor, positions: Tensor | None = None, *, offset: int = 0) -> Tensor:
        """Rotate `x [B, H, T, D]` to positions `offset + arange(T)` or to explicit `positions`."""
        x = _check_tensor(x)
        if x.shape[-1] != self.head_dim:
            raise ValueError(
                f"x must have head_dim = {self.head_dim} last, got shape {tuple(x.shape)}"
            )
        offset = _check_offset(offset)
        if positions is not None:
            if offset:
                raise ValueError("pass either positions or offset, not both")
            return apply_rope(
                x,
                positions,
                interleaved=self.interleaved,
                rotary_dim=self.rotary_dim,
                frequencies=self.frequencies,
            )
        cos, sin = self.cos_sin(
            x.shape[-2], offset=offset, device=x.device, dtype=_compute_dtype(x.dtype)
        )
        return _rotate_channels(x, cos, sin, self.interleaved, self.rotary_dim)

    def rotate_queries_and_keys(
        self, q: Tensor, k: Tensor, *, offset: int = 0, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Rotate `q [B, H, Tq, D]` and `k [B, H, Tk, D]` (Tq <= Tk) for attention.

        Keys take positions `offset + arange(Tk)`; queries take the last Tq of them, as when
        decoding with a KV cache. Explicit `positions` (`[T]` or `[B, T]`, Tq = Tk) are
        turned into one angle table shared by q and k.
        """
        q, k = _check_tensor(q), _check_tensor(k)
        if q.shape[-2] > k.shape[-2]:
            raise ValueError(
                f"q may not be longer than k: got {q.shape[-2]} queries, {k.shape[-2]} keys"
            )
        offset = _check_offset(offset)
        if positions is None:
            return self(q, offset=offset + k.shape[-2] - q.shape[-2]), self(k, offset=offset)
        if offset:
            raise ValueError("pass either positions or offset, not both")
        if q.shape[-2] != k.shape[-2]:
            raise ValueError("positions need as many queries as keys")
        for x in (q, k):
            if x.shape[-1] != self.head_dim:
                raise ValueError(
                    f"q and k must have head_dim = {self.head_dim} last, got {tuple(x.shape)}"
                )
        positions = _check_positions(positions, k)
        compute = _compute_dtype(q.dtype)
        cos, sin = _cos_sin(rope_angles(positions, self.frequencies), compute, q.device)
        if positions.dim() == 2:
            cos, sin = cos[:, None], sin[:, None]
        rotate = lambda x: _rotate_channels(x, cos, sin, self.interleaved, self.rotary_dim)  # noqa: E731
        return rotate(q), rotate(k)


# %% notebooks/09_long_context.md: Rotary values, context extension and long contexts / Context
#    extension: changing the frequencies after training
def interpolated_frequencies(head_dim: int, factor: float, base: float = 10000.0) -> Tensor:
    """Position interpolation (Chen et al. 2023): θ_j / factor.

    Derived in notebooks/09_long_context.md.
    """
    _check_factor(factor)
    return rope_frequencies(head_dim, base) / factor


def ntk_frequencies(head_dim: int, factor: float, base: float = 10000.0) -> Tensor:
    """NTK-aware scaling: base · factor^(D/(D-2)). Derived in notebooks/09_long_context.md."""
    _check_factor(factor)
    return rope_frequencies(head_dim, base * factor ** (head_dim / (head_dim - 2)))


def yarn_frequencies(
    head_dim: int,
    factor: float,
    original_context: int,
    base: float = 10000.0,
    alpha: float = 1.0,
    beta: float = 32.0,
) -> Tensor:
    """YaRN's per-pair blend of interpolated and original frequencies (Peng et al. 2023).

    Derived in notebooks/09_long_context.md.
    """
    _check_factor(factor)
    if (
        isinstance(original_context, bool)
        or not isinstance(original_context, int)
        or original_context < 1
    ):
        raise ValueError(f"original_context must be a positive integer, got {original_context!r}")
    theta = rope_frequencies(head_dim, base)
    turns = original_context * theta / (2 * math.pi)  # r_j = L / λ_j
    ramp = ((turns - alpha) / (beta - alpha)).clamp(0.0, 1.0)  # γ_j
    return (1 - ramp) * theta / factor + ramp * theta


def yarn_logit_scale(factor: float) -> float:
    """YaRN's attention temperature: logits times (0.1 ln s + 1)²."""
    _check_factor(factor)
    return (0.1 * math.log(factor) + 1.0) ** 2


def _check_factor(factor: float) -> None:
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1:
        raise ValueError(f"factor must be a number >= 1, got {factor!r}")


__all__ = [
    "apply_rope",
    "apply_rotary",
    "half_split_permutation",
    "interpolated_frequencies",
    "ntk_frequencies",
    "rope_angles",
    "rope_frequencies",
    "RotaryEmbedding",
    "yarn_frequencies",
    "yarn_logit_scale",
]
