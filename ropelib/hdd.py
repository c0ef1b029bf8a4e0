# generated from notebooks/08_hdd_rope.md by tools/export.py, do not edit

# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations composed by a scan / The HDD-
#    RoPE scheme
from __future__ import annotations

import torch
from torch import Tensor, nn

from ropelib.model import GPTConfig, PositionScheme, register_scheme
from ropelib.rope import rope_frequencies
from ropelib.scan import associative_scan, prefix_scan
from ropelib.train import PRESETS, TrainConfig, register_experiment

MAPS = ("exp", "cayley")


def skew_from_parameters(params: Tensor, b: int) -> Tensor:
    """Skew `[..., b, b]` from `params [..., b(b-1)/2]` below the diagonal (pairs (r, c), r > c)."""
    rows, cols = torch.tril_indices(b, b, offset=-1, device=params.device)
    order = torch.argsort(cols * b + rows)  # column-major below the diagonal, as in the chapter
    rows, cols = rows[order], cols[order]
    A = params.new_zeros(*params.shape[:-1], b, b)
    A[..., rows, cols] = params
    A[..., cols, rows] = -params
    return A


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


def _exp_isoclinic(B: Tensor) -> Tensor:
    """exp(B) for B² = -θ² I: cos θ · I + (sin θ / θ) · B."""
    theta = ((B * B).sum((-1, -2)) / 4).clamp_min(1e-30).sqrt()
    eye = torch.eye(4, dtype=B.dtype, device=B.device)
    return theta.cos()[..., None, None] * eye + (theta.sin() / theta)[..., None, None] * B


def exp_so4(A: Tensor) -> Tensor:
    """exp of skew `A [..., 4, 4]` in closed form: the product of its two isoclinic parts.

    Derived in notebooks/08_hdd_rope.md.
    """
    dual = _hodge_dual(A)
    return _exp_isoclinic((A + dual) / 2) @ _exp_isoclinic((A - dual) / 2)


def quaternion_product(a: Tensor, b: Tensor, dim: int = -1) -> Tensor:
    """Hamilton product of quaternions (w, x, y, z) stored along `dim`."""
    if a.shape[dim] != 4 or b.shape[dim] != 4:
        raise ValueError(f"quaternions need 4 components along dim {dim}, got {a.shape}, {b.shape}")
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
    """exp of pure quaternions `u` (3 components along `dim`): (cos|u|, sin|u| u/|u|)."""
    if u.shape[dim] != 3:
        raise ValueError(f"pure quaternions need 3 components along dim {dim}, got {u.shape}")
    theta = (u * u).sum(dim, keepdim=True).clamp_min(1e-30).sqrt()
    return torch.cat((theta.cos(), theta.sin() / theta * u), dim)


def _multiplication_matrices(dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """L(e_a), R(e_a) `[3, 4, 4]`: left and right multiplication by i, j, k."""
    basis = torch.eye(4, dtype=dtype)
    left = [torch.stack([quaternion_product(e, c) for c in basis], -1) for e in basis[1:]]
    right = [torch.stack([quaternion_product(c, e) for c in basis], -1) for e in basis[1:]]
    return torch.stack(left), torch.stack(right)


def so4_quaternion_parts(params: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """Pure quaternions u, v with skew_from_parameters(params, 4) = L(u) + R(v).

    `params [..., 6]`; u and v have their 3 components at `dim` of the result.
    Derived in notebooks/08_hdd_rope.md.
    """
    if params.shape[-1] != 6:
        raise ValueError(f"so(4) has 6 generator parameters, got {params.shape[-1]}")
    left, right = _multiplication_matrices()
    generators = skew_from_parameters(torch.eye(6, dtype=torch.float64), 4)  # [6, 4, 4]
    # {L(e_a)/2, R(e_a)/2} is an orthonormal basis of so(4): project on it
    to_u = torch.einsum("kij,aij->ka", generators, left).to(params) / 4
    to_v = torch.einsum("kij,aij->ka", generators, right).to(params) / 4
    return (params @ to_u).movedim(-1, dim), (params @ to_v).movedim(-1, dim)


def increment_matrices(params: Tensor, b: int, map: str = "exp") -> Tensor:
    """Orthogonal increments `[..., b, b]` from generator parameters `[..., b(b-1)/2]`."""
    if b == 2 and map == "exp":  # a rotation by the angle itself
        c, s = params[..., 0].cos(), params[..., 0].sin()
        return torch.stack((torch.stack((c, -s), -1), torch.stack((s, c), -1)), -2)
    A = skew_from_parameters(params, b)
    if map == "exp":
        return exp_so4(A) if b == 4 else torch.matrix_exp(A)
    eye = torch.eye(b, dtype=A.dtype, device=A.device)
    return torch.linalg.solve(eye - A, eye + A)  # Cayley: (I - A)^-1 (I + A)


@register_scheme("hdd")
class HDDRoPE(PositionScheme):
    """HDD-RoPE: data-dependent rotations of b-channel chunks, composed by an associative scan.

    Starts as RoPE (generator bias = RoPE's angles, weight = 0).
    Derived in notebooks/08_hdd_rope.md.
    """

    rotary = True

    def __init__(
        self, config: GPTConfig, layer: int | None = None, block_size: int = 4, map: str = "exp"
    ) -> None:
        super().__init__(config, layer)
        self.block_size, self.map = block_size, map
        D, H = config.head_dim, config.n_head
        self.n_chunks = D // block_size
        self.n_params = block_size * (block_size - 1) // 2
        if layer is not None:
            self.increments = nn.Linear(config.n_embd, H * self.n_chunks * self.n_params)
            self.increments.own_init = True  # GPT's init leaves it: it must start as RoPE
            with torch.no_grad():
                self.increments.weight.zero_()
                self.increments.bias.copy_(self._rope_bias(D, H, config.rope_base))

    def _rope_bias(self, head_dim: int, n_heads: int, base: float) -> Tensor:
        """Generator parameters whose increments are RoPE's per-token rotations."""
        b = self.block_size
        theta = rope_frequencies(head_dim, base).view(self.n_chunks, b // 2)  # pair l of chunk j
        if self.map == "cayley":
            theta = torch.tan(theta / 2)  # the Cayley map rotates by 2 atan(a)
        pairs = [(r, c) for c in range(b) for r in range(c + 1, b)]  # same order as the generator
        bias = torch.zeros(self.n_chunks, self.n_params, dtype=torch.float64)
        for l in range(b // 2):
            bias[:, pairs.index((2 * l + 1, 2 * l))] = theta[:, l]
        return bias.repeat(n_heads, 1).flatten().float()

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        super().check_config(config)
        b = config.pe_options.get("block_size", 4)
        if isinstance(b, bool) or not isinstance(b, int) or b < 2 or b % 2 or config.head_dim % b:
            raise ValueError(
                f"pe_options: block_size must be even and divide head_dim = {config.head_dim}, "
                f"got {b!r}"
            )
        if config.pe_options.get("map", "exp") not in MAPS:
            raise ValueError(
                f"pe_options: map must be one of {MAPS}, got {config.pe_options['map']!r}"
            )

    def generator_parameters(self, x: Tensor) -> Tensor:
        """The increments' generator parameters `[B, T, heads, n_chunks, b(b-1)/2]`, float32."""
        B, T, _ = x.shape
        with torch.autocast(x.device.type, enabled=False):
            return self.increments(x.float()).view(B, T, -1, self.n_chunks, self.n_params)

    def prefix_rotations(self, x: Tensor, state: dict | None) -> Tensor:
        """H_t for every token: `[B, heads, T, n_chunks, b, b]` in float32 (any b and map)."""
        params = self.generator_parameters(x).transpose(1, 2)
        with torch.autocast(x.device.type, enabled=False):
            prefix = associative_scan(increment_matrices(params, self.block_size, self.map), dim=2)
            if state is not None:
                if "prefix" in state:  # continue from the cached tokens' product
                    prefix = state["prefix"][:, :, None] @ prefix
                state["prefix"] = prefix[:, :, -1]
        return prefix

    def rotate(self, q, k, positions, x, state):
        if self.block_size == 2:  # SO(2) is commutative: the product is a sum of angles
            return self._rotate_by_angles(q, k, x, state)
        if self.block_size == 4 and self.map == "exp":  # SO(4) as pairs of unit quaternions
            return self._rotate_by_quaternions(q, k, x, state)
        prefix = self.prefix_rotations(x, state)

        def apply(t: Tensor) -> Tensor:
            blocks = t.float().unflatten(-1, (self.n_chunks, self.block_size))  # [B, H, T, nc, b]
            return (prefix @ blocks[..., None]).squeeze(-1).flatten(-2).to(t.dtype)

        return apply(q), apply(k)

    def _rotate_by_angles(self, q, k, x, state):
        params = self.generator_parameters(x)[..., 0]  # [B, T, H, nc]
        angles = params if self.map == "exp" else 2 * torch.atan(params)  # Cayley: 2 atan(a)
        total = angles.double().cumsum(1)  # float64: positions far out keep their angle
        if state is not None:
            if "angle" in state:
                total = total + state["angle"][:, None]
            state["angle"] = total[:, -1]
        total = total.transpose(1, 2)  # [B, H, T, nc]
        cos, sin = total.cos().float(), total.sin().float()

        def apply(t: Tensor) -> Tensor:
            x0, x1 = t.float().unflatten(-1, (self.n_chunks, 2)).unbind(-1)
            y = torch.stack((cos * x0 - sin * x1, sin * x0 + cos * x1), -1)
            return y.flatten(-2).to(t.dtype)

        return apply(q), apply(k)

    def _rotate_by_quaternions(self, q, k, x, state):
        params = self.generator_parameters(x).transpose(0, 1)  # [T, B, H, nc, 6]
        with torch.autocast(x.device.type, enabled=False):
            u, v = so4_quaternion_parts(params, dim=1)  # [T, 3, B, H, nc]: component on dim 1
            left = prefix_scan(quaternion_exp(u, 1), _product_dim1)  # P_t = p_1 ⋯ p_t
            right = prefix_scan(quaternion_exp(-v, 1), _product_dim1)  # conj(q_t ⋯ q_1)
            if state is not None:
                if "left" in state:  # continue from the cached tokens' products
                    left = _product_dim1(state["left"][None], left)
                    right = _product_dim1(state["right"][None], right)
                state["left"], state["right"] = left[-1], right[-1]
            right = right * right.new_tensor([1.0, -1.0, -1.0, -1.0]).view(1, 4, 1, 1, 1)

            def apply(t: Tensor) -> Tensor:  # y = P_t x Q_t on every chunk
                chunks = t.float().unflatten(-1, (self.n_chunks, 4)).permute(2, 4, 0, 1, 3)
                y = _product_dim1(_product_dim1(left, chunks), right)  # [T, 4, B, H, nc]
                return y.permute(2, 3, 0, 4, 1).flatten(-2).to(t.dtype)

            return apply(q), apply(k)


# %% notebooks/08_hdd_rope.md: HDD-RoPE: data-dependent rotations composed by a scan /
#    Experiment: does it converge faster?
def _hdd_configs(base: dict) -> dict[str, TrainConfig]:
    return {
        "rope": TrainConfig(**{**base, "pe": "rope"}),
        "xpos": TrainConfig(**{**base, "pe": "xpos"}),
        "hdd b=2": TrainConfig(**{**base, "pe": "hdd", "pe_options": {"block_size": 2}}),
        "hdd b=4": TrainConfig(**{**base, "pe": "hdd", "pe_options": {"block_size": 4}}),
    }


@register_experiment("hdd", seeds=3)
def hdd_experiment(quick: bool) -> dict[str, TrainConfig]:
    """HDD-RoPE (b = 2, 4) against xPos and RoPE on Shakespeare, cpu-small scale."""
    base = (
        dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3)
        if quick
        else dict(PRESETS["cpu-small"], eval_interval=25)  # a fine curve: speed is the claim
    )
    return _hdd_configs(base)


@register_experiment("hdd-tinystories", seeds=3)
def hdd_tinystories_experiment(quick: bool) -> dict[str, TrainConfig]:
    """The same on TinyStories at the TinyStories-33M-like shape (needs a network and a GPU)."""
    base = (
        dict(PRESETS["cpu-tiny"], max_iters=6, eval_interval=3)
        if quick
        else PRESETS["tinystories-33m"]
    )
    return _hdd_configs(dict(base))


def tokens_to_reach(record: dict, target: float) -> int | None:
    """Training tokens seen when the 1x validation loss first reached `target` (None: never)."""
    config = record["config"]
    tokens_per_step = config["batch_size"] * config["grad_accum"] * config["block_size"]
    for entry in record["history"]:
        if entry.get("kind") == "eval" and entry["val_loss"]["1x"] <= target:
            return entry["iter"] * tokens_per_step
    return None


__all__ = [
    "exp_so4",
    "hdd_experiment",
    "hdd_tinystories_experiment",
    "HDDRoPE",
    "increment_matrices",
    "MAPS",
    "quaternion_exp",
    "quaternion_product",
    "skew_from_parameters",
    "so4_quaternion_parts",
    "tokens_to_reach",
]
