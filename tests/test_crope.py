"""CRoPE's complex-linear projections and scheme (notebooks/05_crope.md)."""

from __future__ import annotations

import pytest
import torch

from ropelib.crope import ComplexLinear, complex_linear_weight, crope_parameter_counts
from ropelib.model import GPT, GPTConfig


def test_structured_weight_is_the_complex_product():
    layer = ComplexLinear(8, 6).double()
    x = torch.randn(4, 8, dtype=torch.float64)
    z = (
        torch.view_as_complex(x.view(4, 4, 2))
        @ torch.complex(layer.weight_real, layer.weight_imag).T
    )
    torch.testing.assert_close(layer(x), torch.view_as_real(z).flatten(-2) + layer.bias)


def test_every_block_has_the_complex_linear_form():
    W = complex_linear_weight(torch.randn(3, 2), torch.randn(3, 2))
    blocks = W.view(3, 2, 2, 2).permute(0, 2, 1, 3)  # [out pair, in pair, 2, 2]
    assert torch.equal(blocks[..., 0, 0], blocks[..., 1, 1])
    assert torch.equal(blocks[..., 0, 1], -blocks[..., 1, 0])


@pytest.mark.parametrize("width", [32, 64, 96])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_formula_matches_the_model(width, bias):
    counts = crope_parameter_counts(width, 3, 77, bias=bias)
    for pe in ("rope", "crope"):
        config = GPTConfig(n_layer=3, n_head=4, n_embd=width, vocab_size=77, pe=pe, bias=bias)
        assert GPT(config).num_parameters() == counts[pe]


def test_gradients_reach_both_weight_parts_and_training_in_bf16_works():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=20, pe="crope"))
    idx = torch.randint(0, 20, (2, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(idx, idx)
    loss.backward()
    projection = model.transformer.h[0].attn.qkv.c_attn
    assert projection.weight_real.grad.abs().sum() > 0
    assert projection.weight_imag.grad.abs().sum() > 0


def test_initialisation_matches_gpt2_variance():
    layer = ComplexLinear(512, 1536)
    assert layer.weight().std().item() == pytest.approx(0.02, rel=0.03)


def test_module_moves_with_its_permutation_buffer():
    model = GPT(
        GPTConfig(
            n_layer=1,
            n_head=2,
            n_embd=16,
            vocab_size=20,
            pe="crope",
            pe_options={"interleaved": False},
        )
    )
    model = model.to(torch.float64)
    assert model.transformer.h[0].attn.qkv.c_attn.out_permutation.dtype == torch.int64
    assert "out_permutation" not in str(list(model.state_dict()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_features=7, out_features=4), "in_features"),
        (dict(in_features=8, out_features=0), "out_features"),
    ],
)
def test_bad_layer_shapes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComplexLinear(**kwargs)


def test_crope_config_errors():
    with pytest.raises(ValueError, match="head_dim"):
        GPTConfig(n_embd=12, n_head=4, pe="crope")
    with pytest.raises(ValueError, match="pe_options"):
        GPTConfig(pe="crope", pe_options={"gamma": 1})
