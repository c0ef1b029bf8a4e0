# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Increments: skew generators,
#    exponential and Cayley maps
"""HDD-RoPE, the method. Chapter *HDD-RoPE: data-dependent rotations*."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ropelib.rope import rope_frequencies
from ropelib.scan import associative_scan, prefix_scan

MAPS = ("exp", "cayley")  # the maps from a skew generator to a rotation
LAYOUTS = ("bhtd", "bthd")


def skew_from_parameters(params: Tensor, b: int) -> Tensor:
    """Skew matrices from generators. Chapter *HDD-RoPE: data-dependent rotations*."""
    rows, cols = torch.tril_indices(b, b, offset=-1, device=params.device)
    order = torch.argsort(cols * b + rows)  # column by column below the diagonal
    rows, cols = rows[order], cols[order]
    A = params.new_zeros(*params.shape[:-1], b, b)
    A[..., rows, cols] = params
    A[..., cols, rows] = -params
    return A


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Increments: skew generators,
#    exponential and Cayley maps
def increment_matrices(params: Tensor, b: int, map: str = "exp") -> Tensor:
    """Rotations from generators. Chapter *HDD-RoPE: data-dependent rotations*."""
    if map not in MAPS:
        raise ValueError(f"map must be one of {MAPS}, got {map!r}")
    if b == 2 and map == "exp":  # a rotation by the angle itself
        c, s = params[..., 0].cos(), params[..., 0].sin()
        return torch.stack((torch.stack((c, -s), -1), torch.stack((s, c), -1)), -2)
    if params.dtype in (torch.float16, torch.bfloat16):  # matrix_exp, solve: float32
        return increment_matrices(params.float(), b, map).to(params.dtype)
    A = skew_from_parameters(params, b)
    if map == "exp":
        return exp_so4(A) if b == 4 else torch.matrix_exp(A)
    eye = torch.eye(b, dtype=A.dtype, device=A.device)
    return torch.linalg.solve(eye - A, eye + A)  # Cayley: (I - A)^-1 (I + A)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Four dimensions in closed
#    form
def _hodge_dual(A: Tensor) -> Tensor:
    """The Hodge dual of skew `A [..., 4, 4]`: (*A)_ij = ½ ε_ijkl A_kl."""
    a01, a02, a03 = A[..., 2, 3], -A[..., 1, 3], A[..., 1, 2]
    a12, a13, a23 = A[..., 0, 3], -A[..., 0, 2], A[..., 0, 1]
    zero = torch.zeros_like(a01)
    rows = (
        (zero, a01, a02, a03),
        (-a01, zero, a12, a13),
        (-a02, -a12, zero, a23),
        (-a03, -a13, -a23, zero),
    )
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _exp_isoclinic(X: Tensor) -> Tensor:
    """exp(X) for X² = -θ² I: cos θ · I + (sin θ / θ) · X."""
    theta = ((X * X).sum((-1, -2)) / 4).clamp_min(1e-30).sqrt()
    eye = torch.eye(4, dtype=X.dtype, device=X.device)
    return (
        theta.cos()[..., None, None] * eye + (theta.sin() / theta)[..., None, None] * X
    )


def exp_so4(A: Tensor) -> Tensor:
    """exp of skew 4 x 4. Chapter *HDD-RoPE: data-dependent rotations*."""
    dual = _hodge_dual(A)
    return _exp_isoclinic((A + dual) / 2) @ _exp_isoclinic((A - dual) / 2)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Quaternions: a scan of 4
#    numbers instead of 16
def quaternion_product(a: Tensor, b: Tensor, dim: int = -1) -> Tensor:
    """Hamilton product along `dim`. Chapter *HDD-RoPE: data-dependent rotations*."""
    if a.shape[dim] != 4 or b.shape[dim] != 4:
        shapes = f"{tuple(a.shape)}, {tuple(b.shape)}"
        raise ValueError(f"quaternions need 4 components along dim {dim}, got {shapes}")
    a0, a1, a2, a3 = a.unbind(dim)
    b0, b1, b2, b3 = b.unbind(dim)
    return torch.stack(
        (
            a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
            a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
            a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
            a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
        ),
        dim,
    )


def _product_dim1(a: Tensor, b: Tensor) -> Tensor:
    return quaternion_product(a, b, 1)


def quaternion_exp(u: Tensor, dim: int = -1) -> Tensor:
    """exp of pure quaternions. Chapter *HDD-RoPE: data-dependent rotations*."""
    if u.shape[dim] != 3:
        shape = tuple(u.shape)
        raise ValueError(
            f"pure quaternions need 3 components along dim {dim}, got {shape}"
        )
    theta = (u * u).sum(dim, keepdim=True).clamp_min(1e-30).sqrt()
    return torch.cat((theta.cos(), theta.sin() / theta * u), dim)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Quaternions: a scan of 4
#    numbers instead of 16
def _multiplication_matrices(
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """L(e_a), R(e_a) `[3, 4, 4]`: left and right multiplication by i, j, k."""
    basis = torch.eye(4, dtype=dtype)
    left = [
        torch.stack([quaternion_product(e, c) for c in basis], -1) for e in basis[1:]
    ]
    right = [
        torch.stack([quaternion_product(c, e) for c in basis], -1) for e in basis[1:]
    ]
    return torch.stack(left), torch.stack(right)


def so4_quaternion_parts(params: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """u, v with A = L(u) + R(v). Chapter *HDD-RoPE: data-dependent rotations*."""
    if params.shape[-1] != 6:
        raise ValueError(f"so(4) has 6 generator parameters, got {params.shape[-1]}")
    left, right = _multiplication_matrices()
    generators = skew_from_parameters(torch.eye(6, dtype=torch.float64), 4)  # [6, 4, 4]
    # {L(e_a)/2, R(e_a)/2} is an orthonormal basis of so(4): project on it
    to_u = torch.einsum("kij,aij->ka", generators, left).to(params) / 4
    to_v = torch.einsum("kij,aij->ka", generators, right).to(params) / 4
    return (params @ to_u).movedim(-1, dim), (params @ to_v).movedim(-1, dim)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Starting as RoPE
def rope_generator_parameters(
    head_dim: int, block_dim: int, map: str = "exp", base: float = 10000.0
) -> Tensor:
    """Generators of RoPE's rotation. Chapter *HDD-RoPE: data-dependent rotations*."""
    b, n_chunks = block_dim, head_dim // block_dim
    theta = rope_frequencies(head_dim, base).view(n_chunks, b // 2)  # pair l of chunk j
    if map == "cayley":
        theta = torch.tan(theta / 2)  # the Cayley map rotates by 2 atan(a)
    pairs = [(r, c) for c in range(b) for r in range(c + 1, b)]  # the generator's order
    params = torch.zeros(n_chunks, b * (b - 1) // 2, dtype=torch.float64)
    for l in range(b // 2):
        params[:, pairs.index((2 * l + 1, 2 * l))] = theta[:, l]
    return params  # [n_chunks, b(b-1)/2]


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Three ways to rotate by
#    $H_t$
def _rotate_by_angles(q, k, params: Tensor, map: str, state: Tensor | None):
    """b = 2: H_t turns each pair by the running sum of the increments' angles."""
    angles = params[..., 0].double()  # [B, T, H, n_chunks]
    if map == "cayley":
        angles = 2 * torch.atan(angles)  # the Cayley map turns by 2 atan(a)
    total = angles.cumsum(1)
    if state is not None:  # continue from the tokens before
        total = total + state[:, None]
    cos, sin = total.transpose(1, 2).cos().float(), total.transpose(1, 2).sin().float()

    def apply(t: Tensor) -> Tensor:
        x0, x1 = t.float().unflatten(-1, (-1, 2)).unbind(-1)
        y = torch.stack((cos * x0 - sin * x1, sin * x0 + cos * x1), -1)
        return y.flatten(-2).to(t.dtype)

    return apply(q), apply(k), total[:, -1]  # state: [B, H, n_chunks]


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Three ways to rotate by
#    $H_t$
def _rotate_by_quaternions(q, k, params: Tensor, state: Tensor | None):
    """b = 4, exp: each chunk x becomes P_t x Q_t, by two scans of unit quaternions."""
    u, v = so4_quaternion_parts(params.transpose(0, 1), dim=1)  # [T, 3, B, H, n_chunks]
    left = prefix_scan(quaternion_exp(u, 1), _product_dim1)  # P_t = p_1 ⋯ p_t
    right = prefix_scan(quaternion_exp(-v, 1), _product_dim1)  # conj(q_t ⋯ q_1)
    if state is not None:  # continue from the tokens before
        past = state.permute(3, 4, 0, 1, 2)  # [2, 4, B, H, n_chunks]
        left = _product_dim1(past[0][None], left)
        right = _product_dim1(past[1][None], right)
    new_state = torch.stack((left[-1], right[-1])).permute(2, 3, 4, 0, 1)
    right = right * right.new_tensor([1.0, -1.0, -1.0, -1.0]).view(1, 4, 1, 1, 1)  # Q_t

    def apply(t: Tensor) -> Tensor:
        chunks = (
            t.float().unflatten(-1, (-1, 4)).permute(2, 4, 0, 1, 3)
        )  # [T, 4, B, H, nc]
        y = _product_dim1(_product_dim1(left, chunks), right)
        return y.permute(2, 3, 0, 4, 1).flatten(-2).to(t.dtype)

    return apply(q), apply(k), new_state  # state: [B, H, n_chunks, 2, 4]


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / Three ways to rotate by
#    $H_t$
def _prefix_matrices(params: Tensor, b: int, map: str, state: Tensor | None) -> Tensor:
    """H_t `[B, H, T, n_chunks, b, b]` by the matrix scan (any b and map)."""
    increments = increment_matrices(
        params.transpose(1, 2), b, map
    )  # [B, H, T, nc, b, b]
    prefix = associative_scan(increments, dim=2)
    return prefix if state is None else state[:, :, None] @ prefix


def _rotate_by_matrices(q, k, prefix: Tensor):
    def apply(t: Tensor) -> Tensor:
        chunks = t.float().unflatten(-1, (-1, prefix.shape[-1]))[..., None]
        return (prefix @ chunks).squeeze(-1).flatten(-2).to(t.dtype)

    return apply(q), apply(k)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The module
def check_hdd_options(
    head_dim: int,
    *,
    n_heads: int,
    d_model: int,
    block_dim: int = 2,
    map: str = "exp",
    base: float = 10000.0,
    layout: str = "bhtd",
) -> None:
    """ValueError naming a bad option. Chapter *HDD-RoPE: data-dependent rotations*."""
    for name, value in (
        ("head_dim", head_dim),
        ("n_heads", n_heads),
        ("d_model", d_model),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    b = block_dim
    if isinstance(b, bool) or not isinstance(b, int) or b < 2 or b % 2 or head_dim % b:
        raise ValueError(
            "block_dim must be an even integer >= 2 that divides "
            f"head_dim = {head_dim}, got {block_dim!r}"
        )
    if not isinstance(map, str) or map not in MAPS:
        raise ValueError(f"map must be one of {MAPS}, got {map!r}")
    number = isinstance(base, (int, float)) and not isinstance(base, bool)
    if not (number and math.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, got {base!r}")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The module
class HDDRoPEBase(nn.Module):
    """Options and increments. Chapter *HDD-RoPE: data-dependent rotations*."""

    def __init__(
        self,
        head_dim: int,
        *,
        n_heads: int,
        d_model: int,
        block_dim: int = 2,
        map: str = "exp",
        base: float = 10000.0,
        layout: str = "bhtd",
    ) -> None:
        super().__init__()
        options = dict(block_dim=block_dim, map=map, base=base, layout=layout)
        check_hdd_options(head_dim, n_heads=n_heads, d_model=d_model, **options)
        self.head_dim, self.n_heads, self.d_model = head_dim, n_heads, d_model
        self.block_dim, self.map, self.base, self.layout = block_dim, map, base, layout
        self.n_chunks = head_dim // block_dim
        self.n_params = block_dim * (block_dim - 1) // 2
        # one skew generator per head, chunk and token, from the layer input
        self.increments = nn.Linear(d_model, n_heads * self.n_chunks * self.n_params)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start as RoPE. Chapter *HDD-RoPE: data-dependent rotations*."""
        b = self.block_dim
        rope = rope_generator_parameters(self.head_dim, b, self.map, self.base)
        with torch.no_grad():
            self.increments.weight.zero_()
            self.increments.bias.copy_(rope.repeat(self.n_heads, 1).flatten())

    def no_weight_decay(self) -> set[str]:
        """The increment weights. Chapter *HDD-RoPE: data-dependent rotations*."""
        return {"increments.weight", "increments.bias"}

    def extra_repr(self) -> str:
        return f"block_dim={self.block_dim}, map={self.map!r}, layout={self.layout!r}"

    def generator_parameters(self, x: Tensor) -> Tensor:
        """Generators from x. Chapter *HDD-RoPE: data-dependent rotations*."""
        # [B, T, H, n_chunks, b(b-1)/2] in float32, from the layer input x [B, T, C]
        with torch.autocast(x.device.type, enabled=False):
            shape = (self.n_heads, self.n_chunks, self.n_params)
            weight, bias = self.increments.weight.float(), self.increments.bias.float()
            return nn.functional.linear(x.float(), weight, bias).unflatten(-1, shape)

    def state_shape(self, batch: int) -> tuple[int, ...]:
        """The running state's shape. Chapter *HDD-RoPE: data-dependent rotations*."""
        b = self.block_dim
        tail = () if b == 2 else (2, 4) if (b == 4 and self.map == "exp") else (b, b)
        return (batch, self.n_heads, self.n_chunks, *tail)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The module
def _check_heads(name: str, t: object, module: HDDRoPEBase) -> Tensor:
    """`t` as `[B, H, T, D]`, or a ValueError naming it."""
    axes = "[B, H, T, D]" if module.layout == "bhtd" else "[B, T, H, D]"
    if not isinstance(t, Tensor) or t.dim() != 4:
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a 4-D tensor {axes}, got {got}")
    t = t if module.layout == "bhtd" else t.transpose(1, 2)
    if t.shape[1] != module.n_heads or t.shape[3] != module.head_dim:
        raise ValueError(
            f"{name} must have {module.n_heads} heads of head_dim = {module.head_dim} "
            f"channels, got [B, H, T, D] = {list(t.shape)}"
        )
    return t


def _check_inputs(module: HDDRoPEBase, q, k, x, state) -> tuple[Tensor, Tensor]:
    """q, k as `[B, H, T, D]` after checking q, k, x and state."""
    q, k = _check_heads("q", q, module), _check_heads("k", k, module)
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {list(q.shape)}, got {list(k.shape)}")
    B, _, T, _ = q.shape
    expected = (B, T, module.d_model)
    if not isinstance(x, Tensor) or x.shape != expected:
        got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"x must be the layer input [B, T, d_model] = {list(expected)}, got {got}"
        )
    shape = module.state_shape(B)
    if state is not None and (not isinstance(state, Tensor) or state.shape != shape):
        got = list(state.shape) if isinstance(state, Tensor) else type(state).__name__
        raise ValueError(
            f"state must be one this module returned, {list(shape)}, got {got}"
        )
    return q, k


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations / The module
class HDDRoPE(HDDRoPEBase):
    """Data-dependent RoPE. Chapter *HDD-RoPE: data-dependent rotations*."""

    def prefix_rotations(self, x: Tensor, state: Tensor | None = None):
        """(H_t, state) as matrices. Chapter *HDD-RoPE: data-dependent rotations*."""
        with torch.autocast(x.device.type, enabled=False):
            params = self.generator_parameters(x)
            prefix = _prefix_matrices(params, self.block_dim, self.map, state)
        return prefix, prefix[:, :, -1]

    def rotate_queries_and_keys(
        self, q: Tensor, k: Tensor, x: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Rotate q, k by H_t. Chapter *HDD-RoPE: data-dependent rotations*."""
        q, k = _check_inputs(self, q, k, x, state)
        with torch.autocast(x.device.type, enabled=False):
            params = self.generator_parameters(x)
            if self.block_dim == 2:  # SO(2) is commutative: a sum of angles
                q, k, state = _rotate_by_angles(q, k, params, self.map, state)
            elif self.block_dim == 4 and self.map == "exp":  # SO(4): unit quaternions
                q, k, state = _rotate_by_quaternions(q, k, params, state)
            else:
                prefix = _prefix_matrices(params, self.block_dim, self.map, state)
                (q, k), state = _rotate_by_matrices(q, k, prefix), prefix[:, :, -1]
        if self.layout == "bthd":
            q, k = q.transpose(1, 2), k.transpose(1, 2)
        return q, k, state


__all__ = [
    "check_hdd_options",
    "exp_so4",
    "HDDRoPE",
    "HDDRoPEBase",
    "increment_matrices",
    "LAYOUTS",
    "MAPS",
    "quaternion_exp",
    "quaternion_product",
    "rope_generator_parameters",
    "skew_from_parameters",
    "so4_quaternion_parts",
]
