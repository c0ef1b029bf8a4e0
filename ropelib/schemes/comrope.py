# generated from notebooks/06_rope_equation.md by tools/export.py, do not edit

# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
"""The GPT adapters of the chapter *The RoPE Equation and ComRoPE*."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ropelib.comrope import ComRoPEAP, ComRoPELD, LieRE, RoPEMixed, _SpectralRotation
from ropelib.model import (
    ConfigError,
    GPTConfig,
    PositionScheme,
    QKVProjection,
    register_scheme,
)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
class _FoldedBasisQKV(QKVProjection):
    """GPT-2's fused Q/K/V projection, blockdiag(V_jᵀ) folded into the q and k rows."""

    def __init__(
        self, config: GPTConfig, angles: _SpectralRotation, interleaved: bool = True
    ) -> None:
        super().__init__(config)
        # a reference, not a submodule: the scheme owns the parameters
        object.__setattr__(self, "_angles", angles)
        self.interleaved = interleaved

    def _fold(self, V: Tensor, rows: Tensor) -> Tensor:
        H, nb, b = V.shape[0], V.shape[1], V.shape[2]  # V: [H, nb, b, b]
        blocks = rows.reshape(H, nb, b, -1)  # rows are output channels h·D + j·b + a
        folded = torch.einsum("hjba,hjbc->hjac", V.to(rows.dtype), blocks)
        if not self.interleaved:  # pair l of block j: channels (2l, 2l+1) of the block
            # -> i and i + D/2 of the head, i = j·b/2 + l
            folded = folded.unflatten(2, (b // 2, 2)).permute(0, 3, 1, 2, 4)
        return folded.reshape(rows.shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        C = x.shape[-1]
        V = (
            self._angles.basis()
        )  # one small exponential per step, shared by q, k, biases
        wq, wk, wv = self.c_attn.weight.split(C)
        weight = torch.cat((self._fold(V, wq), self._fold(V, wk), wv))
        bias = self.c_attn.bias
        if bias is not None:
            bq, bk, bv = bias.split(C)
            bq, bk = (self._fold(V, r[:, None])[:, 0] for r in (bq, bk))
            bias = torch.cat((bq, bk, bv))
        return torch.nn.functional.linear(x, weight, bias).split(C, dim=-1)


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
def _check_angle_options(cls, config: GPTConfig) -> None:
    """block_dim and interleaved of an angle-matrix scheme, or a ConfigError naming them."""
    b = config.pe_options.get("block_dim", cls.default_block_dim)
    if isinstance(b, bool) or not isinstance(b, int) or b < 2 or b % 2:
        raise ConfigError(f"pe_options: block_dim must be an even integer, got {b!r}")
    if config.head_dim % b or (cls.method is RoPEMixed and b != 2):
        accepted = "2" if cls.method is RoPEMixed else "even and divide"
        raise ConfigError(
            f"pe_options: block_dim must be {accepted} head_dim = "
            f"{config.head_dim} for {cls.name!r}, got {b}"
        )
    interleaved = config.pe_options.get("interleaved", True)
    if not isinstance(interleaved, bool):
        raise ConfigError(
            f"pe_options: interleaved must be true or false, got {interleaved!r}"
        )
    if not interleaved and not issubclass(cls.method, _SpectralRotation):
        raise ConfigError(
            f"pe_options: interleaved=False is the folded schemes' layout "
            f"(comrope-ap, comrope-ld, rope-mixed); {cls.name!r} does not fold"
        )


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
class _AngleMatrixScheme(PositionScheme):
    """A block angle-matrix rotation (one axis) as a GPT position scheme."""

    rotary = True
    method: type = ComRoPEAP
    default_block_dim = 8

    def __init__(
        self,
        config: GPTConfig,
        layer: int | None = None,
        block_dim: int | None = None,
        interleaved: bool = True,
    ) -> None:
        super().__init__(config, layer)
        self.block_dim = self.default_block_dim if block_dim is None else block_dim
        self.interleaved = interleaved  # False: the folded pairs half-split
        if layer is not None:
            sizes = dict(n_heads=config.n_head, block_dim=self.block_dim)
            self.angles = self.method(config.head_dim, base=config.rope_base, **sizes)

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        if "block_size" in config.pe_options:
            raise ConfigError(
                f"pe_options: {cls.name!r} names its rotation block 'block_dim' "
                f"('block_size' is the context length), got {dict(config.pe_options)}"
            )
        super().check_config(config)
        _check_angle_options(cls, config)

    @property
    def folded(self) -> bool:
        return isinstance(self.angles, _SpectralRotation)

    def projection(self, config: GPTConfig) -> nn.Module:
        if self.layer is not None and self.folded:
            return _FoldedBasisQKV(config, self.angles, self.interleaved)
        return QKVProjection(config)

    def rotate(self, q, k, positions, x, state):
        if self.folded:
            return self.angles.rotate_in_basis(
                q, k, positions, interleaved=self.interleaved
            )
        return self.angles.rotate_queries_and_keys(q, k, positions)

    def no_weight_decay(self) -> set[str]:
        if self.layer is None:
            return set()
        return {f"angles.{name}" for name in self.angles.no_weight_decay()}


# %% notebooks/06_rope_equation.md: The RoPE Equation and ComRoPE / In the GPT harness
@register_scheme("comrope-ap")
class ComRoPEAPScheme(_AngleMatrixScheme):
    """comrope-ap in the GPT. Chapter *The RoPE Equation and ComRoPE*."""

    method = ComRoPEAP


@register_scheme("comrope-ld")
class ComRoPELDScheme(_AngleMatrixScheme):
    """comrope-ld in the GPT. Chapter *The RoPE Equation and ComRoPE*."""

    method = ComRoPELD


@register_scheme("rope-mixed")
class RoPEMixedScheme(_AngleMatrixScheme):
    """rope-mixed in the GPT. Chapter *The RoPE Equation and ComRoPE*."""

    method = RoPEMixed
    default_block_dim = 2


@register_scheme("liere")
class LieREScheme(_AngleMatrixScheme):
    """liere in the GPT. Chapter *The RoPE Equation and ComRoPE*."""

    method = LieRE


__all__ = [
    "ComRoPEAPScheme",
    "ComRoPELDScheme",
    "LieREScheme",
    "RoPEMixedScheme",
]
