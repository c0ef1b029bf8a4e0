"""ComRoPE, LieRE and RoPE-Mixed (notebooks/06_rope_equation.md)."""

from __future__ import annotations

import pytest
import torch

from ropelib.comrope import ComRoPEAP, ComRoPELD, LieRE, RoPEMixed, skew, skew_schur
from ropelib.model import GPT, GPTConfig

CLASSES = [(ComRoPEAP, 8), (ComRoPELD, 4), (RoPEMixed, 2), (LieRE, 4)]


def perturbed(cls, block_size, n_axes, dtype=torch.float64, head_dim=16, n_heads=2):
    torch.manual_seed(0)
    module = cls(head_dim, n_heads, n_axes=n_axes, block_size=block_size).to(dtype)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


@pytest.mark.parametrize("cls, b", CLASSES)
@pytest.mark.parametrize("n_axes", [1, 2, 3])
def test_closed_form_equals_matrix_exp_in_float64(cls, b, n_axes):
    module = perturbed(cls, b, n_axes)
    positions = torch.randn(7, n_axes, dtype=torch.float64) * 20
    A = module.angle_matrices()
    assert A.shape == (n_axes, 2, 16 // b, b, b)
    expected = torch.matrix_exp(torch.einsum("ti,ihjab->thjab", positions, A))
    assert (module.rotation(positions) - expected).abs().max() < 1e-10


@pytest.mark.parametrize("cls, b", CLASSES)
def test_rope_equation_in_float32_holds_exactly_for_commuting_schemes(cls, b):
    module = perturbed(cls, b, n_axes=2, dtype=torch.float32)
    x, y = torch.rand(32, 2) * 8, torch.rand(32, 2) * 8
    error = (
        (module.rotation(x).transpose(-1, -2) @ module.rotation(y) - module.rotation(y - x))
        .abs()
        .max()
    )
    if cls.commuting:
        assert error < 1e-5
    else:
        assert error > 1e-3


def test_text_positions_up_to_4096_keep_the_rope_equation_in_float32():
    module = perturbed(ComRoPEAP, 8, n_axes=1, dtype=torch.float32)
    m, n = torch.tensor([4000.0]), torch.tensor([4096.0])
    lhs = module.rotation(m).transpose(-1, -2) @ module.rotation(n)
    assert (lhs - module.rotation(n - m)).abs().max() < 1e-5


def test_skew_schur_reconstructs():
    S = skew(torch.randn(3, 6, 6, dtype=torch.float64))
    V, lam = skew_schur(S)
    J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    for i in range(3):
        Lambda = torch.block_diag(*[l * J for l in lam[i]])
        torch.testing.assert_close(V[i] @ Lambda @ V[i].T, S[i])
    with pytest.raises(ValueError, match="even"):
        skew_schur(torch.zeros(3, 3))


@pytest.mark.parametrize(
    "pe, b", [("comrope-ap", 8), ("comrope-ld", 8), ("rope-mixed", 2), ("liere", 4)]
)
def test_schemes_train_with_finite_gradients_for_every_parameter(pe, b):
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            n_layer=1, n_head=2, n_embd=32, vocab_size=30, pe=pe, pe_options={"block_size": b}
        )
    )
    idx = torch.randint(0, 30, (2, 16))
    model(idx, idx)[1].backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_comrope_ap_starts_as_rope():
    torch.manual_seed(0)
    rope = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=30, pe="rope")).eval()
    comrope = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=30, pe="comrope-ap")).eval()
    comrope.load_state_dict(rope.state_dict(), strict=False)
    idx = torch.randint(0, 30, (1, 20))
    torch.testing.assert_close(comrope(idx)[0], rope(idx)[0], atol=1e-5, rtol=1e-5)


def test_frequencies_are_not_matrices_so_they_escape_weight_decay():
    module = ComRoPELD(16, 2, n_axes=2, block_size=4)
    assert module.frequencies.dim() == 1 and module.axis_weights.dim() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(head_dim=16, n_heads=2, block_size=3), "block_size"),
        (dict(head_dim=12, n_heads=2, block_size=8), "block_size"),
        (dict(head_dim=16, n_heads=0), "n_heads"),
        (dict(head_dim=16, n_heads=2, n_axes=0), "n_axes"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComRoPEAP(**kwargs)


def test_bad_positions_and_configs():
    with pytest.raises(ValueError, match="n_axes"):
        ComRoPEAP(16, 2, n_axes=2).rotation(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="block_size"):
        GPTConfig(n_embd=32, n_head=2, pe="comrope-ap", pe_options={"block_size": 6})
    with pytest.raises(ValueError, match="block_size"):
        RoPEMixed(16, 2, block_size=4)
