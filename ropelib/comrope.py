# generated from notebooks/06_rope_equation.md by tools/export.py, do not edit

# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / One axis: ComRoPE is RoPE in
#    a learned basis
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ropelib.model import GPTConfig, PositionScheme, QKVProjection, register_scheme
from ropelib.rope import apply_rotary, rope_frequencies
from ropelib.train import PRESETS, TrainConfig, register_experiment


def skew(P: Tensor) -> Tensor:
    """The skew-symmetric part `P - Pᵀ` of a batch of square matrices."""
    return P - P.transpose(-1, -2)


def skew_schur(S: Tensor) -> tuple[Tensor, Tensor]:
    """Real Schur form of skew-symmetric `S [..., b, b]` (b even): `S = V diag(λ_l J) Vᵀ`.

    Returns the orthogonal `V [..., b, b]` and `λ [..., b/2]` (λ_l >= 0). Eigenvectors of the
    Hermitian `iS` come in conjugate pairs; the real and imaginary parts of the one for
    eigenvalue λ_l > 0, scaled by √2, span the l-th invariant plane. Not differentiable at
    repeated λ (eigh's backward divides by eigenvalue gaps).
    Derived in notebooks/06_rope_equation.md.
    """
    b = S.shape[-1]
    if b % 2 or S.shape[-2] != b:
        raise ValueError(f"S must be [..., b, b] with b even, got shape {tuple(S.shape)}")
    mu, U = torch.linalg.eigh(1j * S.to(torch.complex128))  # ascending: -λ ... +λ
    U = U[..., b // 2 :].flip(-1)  # eigenvectors of the b/2 non-negative eigenvalues
    lam = mu[..., b // 2 :].flip(-1)
    # i S u = μ u  =>  S u = -iμ u; with u = (a + i c)/√2: S a = μ c and S c = -μ a
    V = torch.stack((U.real, U.imag), dim=-1).flatten(-2) * math.sqrt(2)
    # columns (a_l, c_l): S [a c] = [a c] [[0, -μ], [μ, 0]]  ->  V has columns a_1, c_1, a_2, ...
    return V.to(S.dtype), lam.to(S.dtype)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / Computing ComRoPE without a
#    per-token matrix exponential
class _AngleMatrices(nn.Module):
    """Common parts of the block-diagonal angle-matrix schemes, per head.

    Subclasses define `angle_matrices()` -> `[N, heads, head_dim // b, b, b]`.
    """

    commuting = True

    def __init__(self, head_dim: int, n_heads: int, n_axes: int = 1, block_size: int = 8) -> None:
        super().__init__()
        for name, value in (("head_dim", head_dim), ("n_heads", n_heads), ("n_axes", n_axes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
            raise ValueError(f"block_size must be an even integer >= 2, got {block_size!r}")
        if block_size % 2 or head_dim % block_size:
            raise ValueError(
                f"block_size must be even and divide head_dim = {head_dim}, got {block_size}"
            )
        self.head_dim, self.n_heads, self.n_axes, self.block_size = (
            head_dim,
            n_heads,
            n_axes,
            block_size,
        )
        self.n_blocks = head_dim // block_size

    def _check_positions(self, positions: Tensor) -> Tensor:
        """Positions as float64 `[..., N]`; 1-D integer positions `[T]` are read as `[T, 1]`."""
        positions = torch.as_tensor(positions)
        if self.n_axes == 1 and positions.dim() <= 1:  # [T] (or a scalar): one axis
            positions = positions[..., None]
        if positions.shape[-1] != self.n_axes:
            raise ValueError(
                f"positions must end in n_axes = {self.n_axes}, got {tuple(positions.shape)}"
            )
        return positions.to(torch.float64)

    def rotation(self, positions: Tensor) -> Tensor:
        """Block rotations `[..., heads, n_blocks, b, b]` at positions `[..., N]`."""
        generator = torch.einsum(
            "...i,ihjab->...hjab", self._check_positions(positions), self.angle_matrices().double()
        )
        return torch.matrix_exp(generator).to(self.angle_matrices().dtype)


class _SpectralAngleMatrices(_AngleMatrices):
    """AP and LD: block j's generator is a scalar s_j(x) times S_j = V_j diag(λ_j J) V_jᵀ."""

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        n_axes: int = 1,
        block_size: int = 8,
        base: float = 10000.0,
    ):
        super().__init__(head_dim, n_heads, n_axes, block_size)
        b = block_size
        self.basis_generator = nn.Parameter(
            torch.zeros(n_heads, self.n_blocks, b, b)
        )  # K_j; V_j = exp(K_j - K_jᵀ)
        spectrum = self._initial_spectrum(head_dim, base)  # [head_dim / 2], RoPE's by default
        # stored flat (1-D) so that trainers which decay only matrices leave the frequencies alone
        self.frequencies = nn.Parameter(spectrum.float().repeat(n_heads))

    def _initial_spectrum(self, head_dim: int, base: float) -> Tensor:
        return rope_frequencies(head_dim, base)

    def block_frequencies(self) -> Tensor:
        """λ as `[heads, n_blocks, b/2]`."""
        return self.frequencies.view(self.n_heads, self.n_blocks, self.block_size // 2)

    def basis(self) -> Tensor:
        """V_j, orthogonal, `[heads, n_blocks, b, b]`: one small matrix exponential per step."""
        return torch.matrix_exp(skew(self.basis_generator))

    def skew_blocks(self) -> Tensor:
        """S_j = V_j diag(λ_j J) V_jᵀ, `[heads, n_blocks, b, b]`."""
        lam = self.block_frequencies()
        b = self.block_size
        Lambda = torch.zeros(*lam.shape[:-1], b, b, dtype=lam.dtype, device=lam.device)
        idx = torch.arange(0, b, 2, device=lam.device)
        Lambda[..., idx + 1, idx] = lam
        Lambda[..., idx, idx + 1] = -lam
        V = self.basis()
        return V @ Lambda @ V.transpose(-1, -2)

    def coefficients(self, positions: Tensor) -> Tensor:
        """s_j(x) as float64 `[..., heads, n_blocks]`."""
        raise NotImplementedError

    def angles(self, positions: Tensor) -> Tensor:
        """s_j(x)·λ_{j,l} in float64, `[..., heads, head_dim / 2]`."""
        s = self.coefficients(self._check_positions(positions))
        return (s[..., None] * self.block_frequencies().double()).flatten(-2)

    def rotation(self, positions: Tensor) -> Tensor:
        """Block rotations `[..., heads, n_blocks, b, b]` in closed form: V R(sλ) Vᵀ."""
        angles = self.angles(positions).unflatten(-1, (self.n_blocks, self.block_size // 2))
        cos, sin = angles.cos(), angles.sin()
        b = self.block_size
        rot = torch.zeros(*angles.shape[:-1], b, b, dtype=torch.float64, device=angles.device)
        idx = torch.arange(0, b, 2, device=angles.device)
        rot[..., idx, idx], rot[..., idx + 1, idx + 1] = cos, cos
        rot[..., idx + 1, idx], rot[..., idx, idx + 1] = sin, -sin
        V = self.basis().double()
        return (V @ rot @ V.transpose(-1, -2)).to(self.frequencies.dtype)

    def change_basis(self, x: Tensor, inverse: bool = False) -> Tensor:
        """Apply blockdiag(V_jᵀ) (or V_j) to the channels of `x [..., heads, T, head_dim]`."""
        V = self.basis().to(x.dtype)
        blocks = x.unflatten(-1, (self.n_blocks, self.block_size))  # [..., H, T, nb, b]
        matrix = V if inverse else V.transpose(-1, -2)  # [H, nb, b, b]
        return torch.einsum("hjab,...htjb->...htja", matrix, blocks).flatten(-2)

    def cos_sin(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """cos and sin of s_j(x)λ as `[heads, T, head_dim/2]` in the compute dtype of `dtype`."""
        angles = self.angles(positions).transpose(0, 1)  # [H, T, D/2], float64
        compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        return angles.cos().to(compute), angles.sin().to(compute)

    def rotate_in_basis(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """RoPE with the learned angles on `x [B, H, T, D]` already in the basis V (i.e. Vᵀ q)."""
        return apply_rotary(x.to(cos.dtype), cos, sin, interleaved=True).to(x.dtype)

    def rotate_pair(self, q: Tensor, k: Tensor, positions: Tensor, basis_applied: bool = False):
        """Rotated `q, k [B, H, T, D]` whose scores equal those of R(x)q, R(x)k.

        With `basis_applied` the inputs are already Vᵀq, Vᵀk (folded into the projection).
        """
        if not basis_applied:
            q, k = self.change_basis(q), self.change_basis(k)
        angles = self.angles(positions).transpose(0, 1)  # [H, T, D/2], float64: one table
        return _RotateByLearnedAngles.apply(q, k, angles)


class _RotateByLearnedAngles(torch.autograd.Function):
    """Interleaved pairs of q and k rotated by trainable angles, with a one-pass backward.

    d(loss)/dθ = Σ Im(g · conj(y)) over everything the angle table is broadcast over, for the
    output y = x e^{iθ} and its gradient g. Derived in notebooks/06_rope_equation.md.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, angles: Tensor) -> tuple[Tensor, Tensor]:
        compute = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        reduced = torch.remainder(angles, 2 * math.pi).to(compute)  # exact in float64 first
        cos, sin = reduced.cos(), reduced.sin()
        turn = torch.complex(cos, sin)
        outputs = []
        for x in (q, k):
            pairs = torch.view_as_complex(x.to(compute).contiguous().unflatten(-1, (-1, 2)))
            outputs.append(torch.view_as_real(pairs * turn))  # [..., D/2, 2]
        ctx.save_for_backward(cos, sin, *outputs)
        ctx.shapes = (angles.shape, angles.dtype, q.dtype, k.dtype)
        return outputs[0].flatten(-2).to(q.dtype), outputs[1].flatten(-2).to(k.dtype)

    @staticmethod
    def backward(ctx, grad_q: Tensor, grad_k: Tensor):
        cos, sin, y_q, y_k = ctx.saved_tensors
        angle_shape, angle_dtype, q_dtype, k_dtype = ctx.shapes
        back = torch.complex(cos, -sin)  # rotate the gradients back
        grads, grad_angles = [], None
        for g, y, dtype in ((grad_q, y_q, q_dtype), (grad_k, y_k, k_dtype)):
            g = g.to(cos.dtype).contiguous().unflatten(-1, (-1, 2))
            grads.append(torch.view_as_real(torch.view_as_complex(g) * back).flatten(-2).to(dtype))
            if ctx.needs_input_grad[2]:  # Im(g · conj(y)) = g_im y_re - g_re y_im
                part = (g[..., 1] * y[..., 0] - g[..., 0] * y[..., 1]).sum_to_size(angle_shape)
                grad_angles = part if grad_angles is None else grad_angles + part
        if grad_angles is not None:
            grad_angles = grad_angles.to(angle_dtype)
        return grads[0], grads[1], grad_angles


class ComRoPEAP(_SpectralAngleMatrices):
    """ComRoPE-AP: block j is a trained skew matrix used by axis j mod N only.

    Derived in notebooks/06_rope_equation.md.
    """

    def coefficients(self, positions: Tensor) -> Tensor:
        axis = torch.arange(self.n_blocks, device=positions.device) % self.n_axes
        s = positions[..., axis]  # [..., n_blocks]
        return s[..., None, :].expand(*s.shape[:-1], self.n_heads, self.n_blocks)

    def angle_matrices(self) -> Tensor:
        S = self.skew_blocks()
        owner = (torch.arange(self.n_blocks, device=S.device) % self.n_axes)[
            None, :
        ] == torch.arange(self.n_axes, device=S.device)[:, None]
        return S[None] * owner[:, None, :, None, None].to(S.dtype)


class ComRoPELD(_SpectralAngleMatrices):
    """ComRoPE-LD: block j of axis i is θ_ij S_j, one trained skew matrix per block.

    Derived in notebooks/06_rope_equation.md.
    """

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        n_axes: int = 1,
        block_size: int = 8,
        base: float = 10000.0,
    ):
        super().__init__(head_dim, n_heads, n_axes, block_size, base)
        if n_axes == 1:
            directions = torch.ones(1, n_heads, self.n_blocks)
        else:  # random unit directions per block, as RoPE-Mixed initializes its frequencies
            angle = torch.rand(n_heads, self.n_blocks) * 2 * math.pi
            directions = torch.stack(
                [torch.cos(angle + i * math.pi / n_axes) for i in range(n_axes)]
            )
        self.axis_weights = nn.Parameter(directions.flatten())  # θ_ij, flat: no weight decay

    def theta(self) -> Tensor:
        return self.axis_weights.view(self.n_axes, self.n_heads, self.n_blocks)

    def coefficients(self, positions: Tensor) -> Tensor:
        return torch.einsum("...i,ihj->...hj", positions, self.theta().double())

    def angle_matrices(self) -> Tensor:
        return self.theta()[..., None, None] * self.skew_blocks()[None]


class RoPEMixed(ComRoPELD):
    """RoPE-Mixed (Heo et al. 2024): LD with 2x2 blocks, i.e. learned frequencies per axis.

    Derived in notebooks/06_rope_equation.md.
    """

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        n_axes: int = 1,
        block_size: int = 2,
        base: float = 10000.0,
    ):
        if block_size != 2:
            raise ValueError(f"block_size must be 2 for RoPE-Mixed, got {block_size}")
        super().__init__(head_dim, n_heads, n_axes, 2, base)
        self.basis_generator.requires_grad_(False)  # a 2x2 rotation commutes with J: no basis


class LieRE(_AngleMatrices):
    """LieRE (Ostmeier et al. 2024): free skew blocks per axis; they do not commute.

    With one axis it is ComRoPE; with several, R(x) = exp(Σ x_i A_i) has no shared basis and
    is computed per position with a b×b matrix exponential.
    Derived in notebooks/06_rope_equation.md.
    """

    commuting = False

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        n_axes: int = 1,
        block_size: int = 8,
        base: float = 10000.0,
    ):
        super().__init__(head_dim, n_heads, n_axes, block_size)
        b = block_size
        # start from RoPE's generators on axis j mod N, plus small noise that breaks commutation
        ap = ComRoPEAP(head_dim, n_heads, n_axes, block_size, base).angle_matrices().detach()
        self.generators = nn.Parameter(
            0.5 * ap + 0.01 * torch.randn(n_axes, n_heads, self.n_blocks, b, b)
        )

    def angle_matrices(self) -> Tensor:
        return skew(self.generators)

    def rotate_pair(self, q: Tensor, k: Tensor, positions: Tensor, basis_applied: bool = False):
        rotation = self.rotation(positions).to(q.dtype)  # [T, H, nb, b, b]

        def rotate(x):
            blocks = x.unflatten(-1, (self.n_blocks, self.block_size))  # [B, H, T, nb, b]
            return torch.einsum("thjab,zhtjb->zhtja", rotation, blocks).flatten(-2)

        return rotate(q), rotate(k)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
class _FoldedBasisQKV(QKVProjection):
    """GPT-2's fused Q/K/V projection with blockdiag(V_jᵀ) folded into the q and k rows."""

    def __init__(self, config: GPTConfig, angles: _SpectralAngleMatrices) -> None:
        super().__init__(config)
        object.__setattr__(
            self, "_angles", angles
        )  # a reference, not a submodule: no double registration

    def _fold(self, rows: Tensor) -> Tensor:
        V = self._angles.basis().to(rows.dtype)  # [H, nb, b, b]
        H, nb, b = V.shape[0], V.shape[1], V.shape[2]
        blocks = rows.reshape(H, nb, b, -1)  # rows are output channels h·D + j·b + a
        return torch.einsum("hjba,hjbc->hjac", V, blocks).reshape(rows.shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        C = x.shape[-1]
        wq, wk, wv = self.c_attn.weight.split(C)
        weight = torch.cat((self._fold(wq), self._fold(wk), wv))
        bias = self.c_attn.bias
        if bias is not None:
            bq, bk, bv = bias.split(C)
            bias = torch.cat((self._fold(bq[:, None])[:, 0], self._fold(bk[:, None])[:, 0], bv))
        return torch.nn.functional.linear(x, weight, bias).split(C, dim=-1)


class _AngleMatrixScheme(PositionScheme):
    """A block angle-matrix rotation (one axis) as a GPT position scheme."""

    rotary = True
    angle_class: type[_AngleMatrices]
    default_block_size = 8

    def __init__(
        self, config: GPTConfig, layer: int | None = None, block_size: int | None = None
    ) -> None:
        super().__init__(config, layer)
        self.block_size = self.default_block_size if block_size is None else block_size
        if layer is not None:
            self.angles = self.angle_class(
                config.head_dim, config.n_head, 1, self.block_size, config.rope_base
            )

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        b = config.pe_options.get("block_size", cls.default_block_size)
        if isinstance(b, bool) or not isinstance(b, int) or b < 2 or b % 2 or config.head_dim % b:
            raise ValueError(
                f"pe_options: block_size must be even and divide head_dim = {config.head_dim}, "
                f"got {b!r}"
            )

    @property
    def folded(self) -> bool:
        return isinstance(self.angles, _SpectralAngleMatrices)

    def projection(self, config: GPTConfig) -> nn.Module:
        if self.layer is not None and self.folded:
            return _FoldedBasisQKV(config, self.angles)
        return QKVProjection(config)

    def rotate(self, q, k, positions, x, state):
        return self.angles.rotate_pair(q, k, positions, basis_applied=self.folded)


@register_scheme("comrope-ap")
class ComRoPEAPScheme(_AngleMatrixScheme):
    angle_class = ComRoPEAP


@register_scheme("comrope-ld")
class ComRoPELDScheme(_AngleMatrixScheme):
    angle_class = ComRoPELD


@register_scheme("rope-mixed")
class RoPEMixedScheme(_AngleMatrixScheme):
    angle_class = RoPEMixed
    default_block_size = 2


@register_scheme("liere")
class LieREScheme(_AngleMatrixScheme):
    angle_class = LieRE


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / Experiment: ComRoPE on text
@register_experiment("comrope-text", seeds=3)
def comrope_text_experiment(quick: bool) -> dict[str, TrainConfig]:
    """ComRoPE-AP and -LD (b = 2, 4, 8) against RoPE on Shakespeare, cpu-small scale."""
    base = (
        dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3) if quick else PRESETS["cpu-small"]
    )
    configs = {"rope": TrainConfig(**{**base, "pe": "rope"})}
    for pe in ("comrope-ap", "comrope-ld"):
        for b in (2, 4, 8):
            configs[f"{pe} b={b}"] = TrainConfig(
                **{**base, "pe": pe, "pe_options": {"block_size": b}}
            )
    return configs


__all__ = [
    "comrope_text_experiment",
    "ComRoPEAP",
    "ComRoPEAPScheme",
    "ComRoPELD",
    "ComRoPELDScheme",
    "LieRE",
    "LieREScheme",
    "RoPEMixed",
    "RoPEMixedScheme",
    "skew",
    "skew_schur",
]
