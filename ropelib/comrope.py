# generated from notebooks/06_rope_equation.md by tools/export.py, do not edit

# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One axis: ComRoPE is RoPE in
#    a learned basis
"""ComRoPE and its relatives: the chapter *The RoPE Equation and ComRoPE*."""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor, nn

from ropelib.rope import apply_rotary, rope_frequencies


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One axis: ComRoPE is RoPE in
#    a learned basis
def skew(P: Tensor) -> Tensor:
    """The skew part `P - Pᵀ`. Chapter *The RoPE Equation and ComRoPE*."""
    return P - P.transpose(-1, -2)


def skew_schur(S: Tensor) -> tuple[Tensor, Tensor]:
    """`(V, λ)`: S = V diag(λJ) Vᵀ. Chapter *The RoPE Equation and ComRoPE*."""
    # not differentiable at repeated λ: eigh's backward divides by eigenvalue gaps
    b = S.shape[-1]
    if b % 2 or S.dim() < 2 or S.shape[-2] != b:
        raise ValueError(
            f"S must be [..., b, b] with b even, got shape {tuple(S.shape)}"
        )
    mu, U = torch.linalg.eigh(1j * S.to(torch.complex128))  # ascending: -λ ... +λ
    U = U[..., b // 2 :].flip(-1)  # eigenvectors of the b/2 non-negative eigenvalues
    lam = mu[..., b // 2 :].flip(-1)
    # u = (a + i c)/√2 with S a = λ c, S c = -λ a: V has columns a_1, c_1, a_2, c_2, ...
    V = torch.stack((U.real, U.imag), dim=-1).flatten(-2) * math.sqrt(2)
    return V.to(S.dtype), lam.to(S.dtype)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / N-D positions: axial RoPE
def axial_frequencies(
    head_dim: int, n_axes: int = 1, block_dim: int = 2, base: float = 10000.0
) -> Tensor:
    """RoPE's rates dealt out to axes. Chapter *The RoPE Equation and ComRoPE*."""
    n_blocks, half = head_dim // block_dim, block_dim // 2
    if n_blocks * block_dim != head_dim or block_dim % 2 or n_axes < 1:
        raise ValueError(
            f"block_dim must be even and divide head_dim = {head_dim}, got {block_dim}"
        )
    spectrum = torch.empty(n_blocks, half, dtype=torch.float64)
    for axis in range(min(n_axes, n_blocks)):
        owned = list(range(axis, n_blocks, n_axes))  # blocks axis, axis + N, ...
        rates = rope_frequencies(len(owned) * block_dim, base)
        spectrum[owned] = rates.to(torch.float64).view(len(owned), half)
    return spectrum.flatten()


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One interface for every
#    method
LAYOUTS = ("bhtd", "bthd")


def _integer(name: str, value: object, minimum: int = 1) -> int:
    try:  # ints, NumPy integers and 0-d integer tensors; not bools, not floats
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One interface for every
#    method
def _as_bhtd(x: object, name: str, layout: str, head_dim: int, n_heads: int | None):
    """`x` as `[B, H, T, D]`, checked against the module's sizes."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 4-D tensor [{layout}], got {shape}")
    x = x.transpose(1, 2) if layout == "bthd" else x
    if x.shape[-1] != head_dim:
        raise ValueError(
            f"{name} must have head_dim = {head_dim} channels, got {x.shape[-1]}"
        )
    if n_heads is not None and x.shape[1] != n_heads:
        raise ValueError(
            f"{name} must have n_heads = {n_heads} heads, got {x.shape[1]}"
        )
    return x


def _as_positions(positions: object, n_axes: int, device: torch.device) -> Tensor:
    """float64 `[..., N]` for `rotation` and `angles`; `[T]` is `[T, 1]` when N = 1."""
    positions = torch.as_tensor(positions, device=device)
    if n_axes == 1 and positions.dim() <= 1:
        positions = positions[..., None]
    if positions.shape[-1] != n_axes:
        raise ValueError(
            f"positions must end in n_axes = {n_axes}, "
            f"got shape {tuple(positions.shape)}"
        )
    return positions.to(torch.float64)


def _check_positions(
    positions: object, n_axes: int, batch: int, length: int, device: torch.device
) -> Tensor:
    """float64 `[T, N]` or `[B, T, N]`; `[T]` is read as `[T, 1]` when N = 1."""
    positions = torch.as_tensor(positions, device=device)
    if positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"positions must be real numbers, got {positions.dtype}")
    if positions.dim() == 1 and n_axes == 1:
        positions = positions[:, None]
    shape = tuple(positions.shape)
    if positions.dim() not in (2, 3) or shape[-1] != n_axes:
        raise ValueError(
            f"positions must be [T, {n_axes}] or [B, T, {n_axes}] (n_axes = {n_axes}), "
            f"got shape {shape}"
        )
    if shape[-2] != length:
        raise ValueError(
            f"positions must have T = {length} rows to match q's sequence axis "
            f"(without prefix tokens), got {shape[-2]}"
        )
    if positions.dim() == 3 and shape[0] not in (1, batch):
        raise ValueError(
            f"positions must have B = {batch} samples to match q's batch axis, "
            f"got {shape[0]}"
        )
    return positions.to(torch.float64)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One interface for every
#    method
class _PositionalRotation(nn.Module):
    """Shapes, layouts, prefix tokens and positions, shared by every method below."""

    n_heads: int | None = None  # learned methods keep one set of parameters per head

    def __init__(self, head_dim: int, n_axes: int, prefix_tokens: int, layout: str):
        super().__init__()
        self.head_dim = _integer("head_dim", head_dim, 2)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even (pairs rotate), got {head_dim}")
        self.n_axes = _integer("n_axes", n_axes)
        self.prefix_tokens = _integer("prefix_tokens", prefix_tokens, 0)
        if layout not in LAYOUTS:
            raise ValueError(
                f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}"
            )
        self.layout = layout

    def _rotate_with(self, rotate, q, k, positions, offset):
        sizes = (self.layout, self.head_dim, self.n_heads)
        q, k = _as_bhtd(q, "q", *sizes), _as_bhtd(k, "k", *sizes)
        (B, _, T, _), offset = q.shape, _integer("offset", offset, 0)
        if (k.shape[0], k.shape[2]) != (B, T):
            raise ValueError(
                f"k must have q's B = {B} and T = {T}, got {k.shape[0]}, {k.shape[2]}"
            )
        if positions is not None and offset:
            raise ValueError("pass either positions or offset, not both")
        skip = min(max(self.prefix_tokens - offset, 0), T)  # unrotated prefix tokens
        if positions is None:
            if self.n_axes > 1:
                raise ValueError(f"positions are required with n_axes = {self.n_axes}")
            first = max(offset - self.prefix_tokens, 0)
            positions = torch.arange(first, first + T - skip, device=q.device)
        positions = _check_positions(positions, self.n_axes, B, T - skip, q.device)
        q_rot, k_rot = rotate(q[..., skip:, :], k[..., skip:, :], positions)
        if skip:
            q_rot = torch.cat((q[..., :skip, :], q_rot), dim=-2)
            k_rot = torch.cat((k[..., :skip, :], k_rot), dim=-2)
        if self.layout == "bthd":
            return q_rot.transpose(1, 2), k_rot.transpose(1, 2)
        return q_rot, k_rot

    def rotate_queries_and_keys(self, q, k, positions=None, *, offset: int = 0):
        """`(q, k)` turned to positions `[T]`, `[T, N]`, `[B, T, N]` or `offset + t`."""
        return self._rotate_with(self._rotate, q, k, positions, offset)

    def no_weight_decay(self) -> set[str]:
        """The names of this module's position parameters: they take no weight decay."""
        return set()

    def extra_repr(self) -> str:
        heads = "" if self.n_heads is None else f", n_heads={self.n_heads}"
        return (
            f"head_dim={self.head_dim}{heads}, n_axes={self.n_axes}, "
            f"prefix_tokens={self.prefix_tokens}, layout={self.layout!r}"
        )


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One interface for every
#    method
def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class AxialRoPE(_PositionalRotation):
    """Axial RoPE for N-D positions. Chapter *The RoPE Equation and ComRoPE*."""

    def __init__(
        self,
        head_dim: int,
        *,
        n_axes: int = 1,
        base: float = 10000.0,
        prefix_tokens: int = 0,
        layout: str = "bhtd",
    ) -> None:
        super().__init__(head_dim, n_axes, prefix_tokens, layout)
        head_dim, n_axes = self.head_dim, self.n_axes
        if head_dim // 2 < n_axes:
            raise ValueError(
                f"head_dim must give each of n_axes = {n_axes} axes a pair, "
                f"got {head_dim}"
            )
        self.base = float(base)
        # a plain float64 CPU tensor, not a buffer: model.half() must not round it
        self.frequencies = axial_frequencies(head_dim, n_axes, 2, base)
        self.axis = torch.arange(head_dim // 2) % n_axes  # the axis of each pair

    def angles(self, positions: Tensor) -> Tensor:
        """x_{a(j)} λ_j in float64, `[..., head_dim / 2]`, at positions `[..., N]`."""
        x = _as_positions(positions, self.n_axes, getattr(positions, "device", None))
        return x[..., self.axis.to(x.device)] * self.frequencies.to(x.device)

    def _rotate(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        angles = self.angles(positions)[..., None, :, :]  # [(B,) 1, T, D/2]: every head
        compute = _compute_dtype(q.dtype)
        cos, sin = angles.cos().to(compute), angles.sin().to(compute)
        q_rot, k_rot = (
            apply_rotary(x.to(compute), cos, sin).to(x.dtype) for x in (q, k)
        )
        return q_rot, k_rot


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The angle matrices in code
class _AngleMatrices(_PositionalRotation):
    """Block-diagonal generators, `angle_matrices() -> [N, heads, D // b, b, b]`."""

    commuting = True
    one_block_per_axis = False  # AP and LieRE: every axis owns a block of its own

    def __init__(
        self,
        head_dim: int,
        *,
        n_heads: int = 1,
        n_axes: int = 1,
        block_dim: int = 8,
        base: float = 10000.0,
        prefix_tokens: int = 0,
        layout: str = "bhtd",
    ) -> None:
        super().__init__(head_dim, n_axes, prefix_tokens, layout)
        self.n_heads = _integer("n_heads", n_heads)
        self.block_dim = _integer("block_dim", block_dim, 2)
        head_dim, n_axes, block_dim = self.head_dim, self.n_axes, self.block_dim
        if block_dim % 2 or head_dim % block_dim:
            raise ValueError(
                f"block_dim must be even and divide head_dim = {head_dim}, "
                f"got {block_dim}"
            )
        self.n_blocks, self.base = head_dim // block_dim, float(base)
        if self.one_block_per_axis and self.n_blocks < n_axes:
            raise ValueError(
                f"block_dim must leave each of n_axes = {n_axes} axes a block "
                f"(n_axes * block_dim <= head_dim = {head_dim}), got {block_dim}"
            )
        self._init_parameters()

    def _init_parameters(self) -> None:  # the trained generators: each scheme's own
        raise NotImplementedError

    def rotation(self, positions: Tensor) -> Tensor:
        """Blocks of exp(Σ_i x_i A_i), `[..., heads, n_blocks, b, b]`, at `[..., N]`."""
        A = self.angle_matrices()
        x = _as_positions(positions, self.n_axes, A.device)
        generator = torch.einsum("...i,ihjab->...hjab", x, A.double())
        return torch.matrix_exp(generator).to(A.dtype)

    def _rotate(self, q: Tensor, k: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        compute = _compute_dtype(q.dtype)
        # [(B,) T, H, nb, b, b] -> [(B,) H, T, nb, b, b]
        R = self.rotation(positions).to(compute).transpose(-4, -5)

        def rotate(x: Tensor) -> Tensor:
            blocks = x.to(compute).unflatten(-1, (self.n_blocks, self.block_dim))
            return (R @ blocks[..., None]).squeeze(-1).flatten(-2).to(x.dtype)

        return rotate(q), rotate(k)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The angle matrices in code
def _pair_blocks(diagonal: Tensor, lower: Tensor) -> Tensor:
    """`[..., b, b]` of 2×2 blocks [[d, -l], [l, d]], from `d, l [..., b/2]`."""
    b = 2 * diagonal.shape[-1]
    out = diagonal.new_zeros(*diagonal.shape[:-1], b, b)
    i = torch.arange(0, b, 2, device=diagonal.device)
    out[..., i, i], out[..., i + 1, i + 1] = diagonal, diagonal
    out[..., i + 1, i], out[..., i, i + 1] = lower, -lower
    return out


class _SpectralAngleMatrices(_AngleMatrices):
    """AP and LD: block j's generator is s_j(x) S_j with S_j = V_j diag(λ_j J) V_jᵀ."""

    def _init_parameters(self) -> None:
        H, nb, b = self.n_heads, self.n_blocks, self.block_dim
        # K_j: V_j = exp(K_j - K_jᵀ) is orthogonal; K_j = 0 starts it at the identity
        self.basis_generator = nn.Parameter(torch.zeros(H, nb, b, b))
        # λ, flat [heads · head_dim / 2], from the axial spectrum (RoPE's for N = 1)
        spectrum = axial_frequencies(self.head_dim, self.n_axes, b, self.base)
        self.frequencies = nn.Parameter(spectrum.float().repeat(H))

    def block_frequencies(self) -> Tensor:
        """λ as `[heads, n_blocks, b/2]`."""
        return self.frequencies.view(self.n_heads, self.n_blocks, self.block_dim // 2)

    def basis(self) -> Tensor:
        """V_j, orthogonal, `[heads, n_blocks, b, b]`: a small matrix exponential."""
        K = self.basis_generator  # half precision: exponentiated in float32, cast back
        return torch.matrix_exp(skew(K.to(_compute_dtype(K.dtype)))).to(K.dtype)

    def skew_blocks(self) -> Tensor:
        """S_j = V_j diag(λ_j J) V_jᵀ, `[heads, n_blocks, b, b]`."""
        lam = self.block_frequencies()
        V = self.basis()
        return V @ _pair_blocks(torch.zeros_like(lam), lam) @ V.transpose(-1, -2)

    def coefficients(self, positions: Tensor) -> Tensor:
        """s_j(x), float64 `[..., heads, n_blocks]`, at float64 positions `[..., N]`."""
        raise NotImplementedError

    def angles(self, positions: Tensor) -> Tensor:
        """s_j(x)·λ_{j,l} in float64, `[..., heads, head_dim / 2]`."""
        x = _as_positions(positions, self.n_axes, self.frequencies.device)
        s = self.coefficients(x)
        return (s[..., None] * self.block_frequencies().double()).flatten(-2)

    def rotation(self, positions: Tensor) -> Tensor:
        """Blocks of R(x) in closed form, V R_RoPE(sλ) Vᵀ, `[..., heads, nb, b, b]`."""
        angles = self.angles(positions).unflatten(-1, (self.n_blocks, -1))
        V = self.basis().double()
        rope = _pair_blocks(angles.cos(), angles.sin())
        return (V @ rope @ V.transpose(-1, -2)).to(self.frequencies.dtype)

    def no_weight_decay(self) -> set[str]:
        """The basis generators, frequencies (and LD's axis weights): no decay."""
        return {name for name, _ in self.named_parameters(recurse=False)}


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The angle matrices in code
class _SpectralRotation(_SpectralAngleMatrices):
    """Attention through AP and LD: a change of basis, then RoPE at learned angles."""

    def change_basis(self, x: Tensor, inverse: bool = False) -> Tensor:
        """blockdiag(V_jᵀ) (or V_j) on the channels of `x [..., heads, T, head_dim]`."""
        V = self.basis().to(x.dtype)
        blocks = x.unflatten(-1, (self.n_blocks, self.block_dim))  # [..., H, T, nb, b]
        matrix = V if inverse else V.transpose(-1, -2)  # [H, nb, b, b]
        return torch.einsum("hjab,...htjb->...htja", matrix, blocks).flatten(-2)

    def rotate_in_basis(
        self, q, k, positions=None, *, offset: int = 0, interleaved: bool = True
    ):
        """`rotate_queries_and_keys` for `q, k` already in the basis V (Vᵀq, Vᵀk).

        `interleaved=False`: pair i of the basis is at channels i and i + head_dim / 2.
        """
        if not isinstance(interleaved, bool):
            raise ValueError(f"interleaved must be True or False, got {interleaved!r}")

        def rotate(q: Tensor, k: Tensor, positions: Tensor):
            return self._rotate_in_basis(q, k, positions, interleaved)

        return self._rotate_with(rotate, q, k, positions, offset)

    def _rotate_in_basis(self, q, k, positions: Tensor, interleaved: bool = True):
        angles = self.angles(positions).movedim(-2, -3)  # [(B,) H, T, D/2], float64
        if interleaved:
            return _RotateByLearnedAngles.apply(q, k, angles)
        return _RotateHalvesByLearnedAngles.apply(q, k, angles)

    def _rotate(self, q: Tensor, k: Tensor, positions: Tensor):
        q, k = self.change_basis(q), self.change_basis(k)
        return self._rotate_in_basis(q, k, positions)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The gradient of a learned
#    angle
def _complex_pairs(x: Tensor) -> Tensor:
    """The interleaved pairs of a contiguous `x [..., 2m]` as `m` complex numbers."""
    return torch.view_as_complex(x.unflatten(-1, (-1, 2)))


def _add_angle_gradient(total: Tensor | None, g: Tensor, y: Tensor, shape) -> Tensor:
    """`total` plus Im(g ȳ) of the pairs of `g, y [..., 2m]`, summed to `shape`."""
    if torch.compiler.is_compiling():  # neighbours' products: Im(g ȳ) at even entries
        cross = g[..., 1:] * y[..., :-1] - g[..., :-1] * y[..., 1:]
        part = cross.sum_to_size(*shape[:-1], cross.shape[-1])[..., 0::2]
        return part if total is None else total + part
    g_re, g_im = g.unflatten(-1, (-1, 2)).unbind(-1)
    y_re, y_im = y.unflatten(-1, (-1, 2)).unbind(-1)
    lead = g_re.dim() - len(shape)
    if lead == 0 or tuple(g_re.shape[lead:]) != tuple(shape):  # any other broadcast
        part = (g_im * y_re - g_re * y_im).sum_to_size(shape)
        return part if total is None else total.add_(part)
    # one table for every sample: added sample by sample, in place
    g_re, g_im, y_re, y_im = (t.flatten(0, lead - 1) for t in (g_re, g_im, y_re, y_im))
    for i in range(g_re.shape[0]):
        if total is None:
            total = g_im[i] * y_re[i]
        else:
            total.addcmul_(g_im[i], y_re[i])
        total.addcmul_(g_re[i], y_im[i], value=-1)
    return total


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The gradient of a learned
#    angle
class _RotateByLearnedAngles(torch.autograd.Function):
    """Interleaved pairs of q and k turned by trainable angles; a one-pass backward."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, angles: Tensor) -> tuple[Tensor, Tensor]:
        compute = _compute_dtype(q.dtype)
        # reduced to [-π, π] while still in float64, then cast
        turns = torch.round(angles * (1 / (2 * math.pi)))
        reduced = torch.add(angles, turns, alpha=-2 * math.pi).to(compute)
        # e^{iθ} as (cos θ, sin θ) pairs
        turn = torch.view_as_complex(
            torch.stack((reduced.cos(), reduced.sin()), dim=-1)
        )
        outputs = [
            torch.view_as_real(_complex_pairs(x.to(compute).contiguous()) * turn)
            for x in (q, k)
        ]
        ctx.save_for_backward(turn, *outputs)
        ctx.dtypes = (angles.dtype, compute, q.dtype, k.dtype)
        q_rot, k_rot = (y.flatten(-2) for y in outputs)
        return q_rot.to(q.dtype), k_rot.to(k.dtype)

    @staticmethod
    def backward(ctx, grad_q: Tensor, grad_k: Tensor):
        turn, y_q, y_k = ctx.saved_tensors
        angle_dtype, compute, q_dtype, k_dtype = ctx.dtypes
        back = turn.conj().resolve_conj()  # e^{-iθ}: rotates the gradients back
        grads, grad_angles = [], None
        for g, y, dtype in ((grad_q, y_q, q_dtype), (grad_k, y_k, k_dtype)):
            g = g.to(compute).contiguous()
            turned = torch.view_as_real(_complex_pairs(g) * back)
            grads.append(turned.flatten(-2).to(dtype))
            if ctx.needs_input_grad[2]:  # Im(g ȳ) = g_im y_re - g_re y_im
                y = y.flatten(-2)
                grad_angles = _add_angle_gradient(grad_angles, g, y, turn.shape)
        if grad_angles is not None:
            grad_angles = grad_angles.to(angle_dtype)
        return grads[0], grads[1], grad_angles


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / Pairs side by side, for the
#    compiler
class _RotateHalvesByLearnedAngles(torch.autograd.Function):
    """Pairs (x_i, x_{i + D/2}) of q and k turned by trainable angles (half-split)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, angles: Tensor) -> tuple[Tensor, Tensor]:
        compute = _compute_dtype(q.dtype)
        turns = torch.round(angles * (1 / (2 * math.pi)))  # to [-π, π] in float64
        reduced = torch.add(angles, turns, alpha=-2 * math.pi).to(compute)
        cos, sin = reduced.cos(), reduced.sin()
        outputs = []
        for x in (q, k):
            x1, x2 = x.to(compute).chunk(2, dim=-1)
            outputs.append(torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1))
        ctx.save_for_backward(cos, sin, *outputs)
        ctx.dtypes = (angles.dtype, q.dtype, k.dtype)
        return outputs[0].to(q.dtype), outputs[1].to(k.dtype)

    @staticmethod
    def backward(ctx, grad_q: Tensor, grad_k: Tensor):
        cos, sin, y_q, y_k = ctx.saved_tensors
        angle_dtype, q_dtype, k_dtype = ctx.dtypes
        grads, grad_angles = [], None
        for g, y, dtype in ((grad_q, y_q, q_dtype), (grad_k, y_k, k_dtype)):
            g1, g2 = g.to(cos.dtype).chunk(2, dim=-1)
            back = torch.cat((g1 * cos + g2 * sin, g2 * cos - g1 * sin), -1)
            grads.append(back.to(dtype))
            if ctx.needs_input_grad[2]:  # Im(g ȳ) of each pair, summed to the table
                y1, y2 = y.chunk(2, dim=-1)
                part = (g2 * y1 - g1 * y2).sum_to_size(cos.shape)
                grad_angles = part if grad_angles is None else grad_angles + part
        if grad_angles is not None:
            grad_angles = grad_angles.to(angle_dtype)
        return grads[0], grads[1], grad_angles


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The four learned schemes
class ComRoPEAP(_SpectralRotation):
    """ComRoPE-AP (axial partition). Chapter *The RoPE Equation and ComRoPE*."""

    one_block_per_axis = True

    def coefficients(self, positions: Tensor) -> Tensor:
        axis = torch.arange(self.n_blocks, device=positions.device) % self.n_axes
        s = positions[..., axis]  # [..., n_blocks]
        return s[..., None, :].expand(*s.shape[:-1], self.n_heads, self.n_blocks)

    def angle_matrices(self) -> Tensor:
        S = self.skew_blocks()
        owner = torch.arange(self.n_blocks, device=S.device) % self.n_axes
        owned = owner[None, :] == torch.arange(self.n_axes, device=S.device)[:, None]
        return S[None] * owned[:, None, :, None, None].to(S.dtype)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The four learned schemes
class ComRoPELD(_SpectralRotation):
    """ComRoPE-LD (linearly dependent). Chapter *The RoPE Equation and ComRoPE*."""

    def _init_parameters(self) -> None:
        super()._init_parameters()
        N, H, nb = self.n_axes, self.n_heads, self.n_blocks
        if N == 1:
            directions = torch.ones(1, H, nb)
        else:  # random unit directions per block
            angle = torch.rand(H, nb) * 2 * math.pi
            directions = torch.stack(
                [torch.cos(angle + i * math.pi / N) for i in range(N)]
            )
        self.axis_weights = nn.Parameter(directions.flatten())  # θ_ij, flat

    def theta(self) -> Tensor:
        """θ as `[N, heads, n_blocks]`."""
        return self.axis_weights.view(self.n_axes, self.n_heads, self.n_blocks)

    def coefficients(self, positions: Tensor) -> Tensor:
        return torch.einsum("...i,ihj->...hj", positions, self.theta().double())

    def angle_matrices(self) -> Tensor:
        return self.theta()[..., None, None] * self.skew_blocks()[None]


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The four learned schemes
class RoPEMixed(ComRoPELD):
    """RoPE-Mixed: LD with 2×2 blocks. Chapter *The RoPE Equation and ComRoPE*."""

    def __init__(
        self,
        head_dim: int,
        *,
        n_heads: int = 1,
        n_axes: int = 1,
        block_dim: int = 2,
        base: float = 10000.0,
        prefix_tokens: int = 0,
        layout: str = "bhtd",
    ) -> None:
        if block_dim != 2:
            raise ValueError(f"block_dim must be 2 for RoPE-Mixed, got {block_dim!r}")
        sizes = dict(n_heads=n_heads, n_axes=n_axes, block_dim=2, base=base)
        super().__init__(head_dim, prefix_tokens=prefix_tokens, layout=layout, **sizes)
        self.basis_generator.requires_grad_(False)  # 2×2 rotations commute with J


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / The four learned schemes
class LieRE(_AngleMatrices):
    """LieRE: non-commuting generators. Chapter *The RoPE Equation and ComRoPE*."""

    commuting = False
    one_block_per_axis = True

    def _init_parameters(self) -> None:
        N, H, nb, b = self.n_axes, self.n_heads, self.n_blocks, self.block_dim
        sizes = dict(n_heads=H, n_axes=N, block_dim=b, base=self.base)
        axial = ComRoPEAP(self.head_dim, **sizes).angle_matrices().detach()
        # skew(P) = P - Pᵀ doubles a skew P; the noise breaks commutation
        self.generators = nn.Parameter(0.5 * axial + 0.01 * torch.randn(N, H, nb, b, b))

    def angle_matrices(self) -> Tensor:
        return skew(self.generators)

    def no_weight_decay(self) -> set[str]:
        """The generators take no weight decay."""
        return {"generators"}


__all__ = [
    "axial_frequencies",
    "AxialRoPE",
    "ComRoPEAP",
    "ComRoPELD",
    "LAYOUTS",
    "LieRE",
    "RoPEMixed",
    "skew",
    "skew_schur",
]
