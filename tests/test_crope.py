"""CRoPE's complex-linear projections, its GPT adapter and its experiment (chapter *CRoPE:
queries, keys and values as complex-linear maps*)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ropelib.schemes  # noqa: F401  registers the GPT adapters, pe="crope" among them
from ropelib.crope import (
    ComplexLinear,
    ComplexQKV,
    complex_linear_weight,
    crope_parameter_counts,
)
from ropelib.model import GPT, GPTConfig, QKVProjection, get_scheme
from ropelib.rope import RotaryEmbedding, half_split_permutation


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
    model = GPT(GPTConfig(n_layer=1, n_head=4, n_embd=256, vocab_size=20, pe="crope"))
    weight = model.transformer.h[0].attn.qkv.c_attn.weight()
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_module_moves_with_its_permutation_buffer():
    config = GPTConfig(
        n_layer=1, n_head=2, n_embd=16, vocab_size=20, pe="crope", pe_options={"interleaved": False}
    )
    model = GPT(config).to(torch.float64)
    assert model.transformer.h[0].attn.qkv.c_attn.out_permutation.dtype == torch.int64
    assert "out_permutation" not in str(list(model.state_dict()))


def _phase(x: torch.Tensor, phi: float, head_dim: int | None = None) -> torch.Tensor:
    """e^{i phi} on every complex coordinate: interleaved pairs, or (j, j + D/2) per head."""
    cos, sin = math.cos(phi), math.sin(phi)
    if head_dim is None:
        re, im = x[..., 0::2], x[..., 1::2]
        return torch.stack((cos * re - sin * im, sin * re + cos * im), -1).flatten(-2)
    re, im = x.unflatten(-1, (-1, head_dim)).chunk(2, dim=-1)
    return torch.cat((cos * re - sin * im, sin * re + cos * im), -1).flatten(-2)


@pytest.mark.parametrize("interleaved", [True, False])
def test_projections_commute_with_a_common_phase(interleaved):
    qkv = ComplexQKV(48, bias=False, interleaved=interleaved, head_dim=12).double()
    x = torch.randn(2, 5, 48, dtype=torch.float64)
    head_dim = None if interleaved else 12
    for out, moved in zip(qkv(x), qkv(_phase(x, 0.8)), strict=True):
        torch.testing.assert_close(_phase(out, 0.8, head_dim), moved)
    # negative control: the other pairing's phase is not what the projection commutes with
    other = 12 if interleaved else None
    assert not torch.allclose(_phase(qkv(x)[0], 0.8, other), qkv(_phase(x, 0.8))[0])


def test_half_split_rows_are_the_interleaved_rows_permuted_inside_each_head():
    qkv = ComplexQKV(16, interleaved=False, head_dim=8)
    W = qkv.c_attn.weight()
    W_interleaved = complex_linear_weight(qkv.c_attn.weight_real, qkv.c_attn.weight_imag)
    perm = half_split_permutation(8)
    for head in range(6):  # q, k, v: 2 heads each
        rows = slice(8 * head, 8 * head + 8)
        assert torch.equal(W[rows][perm], W_interleaved[rows])


class OwnAttention(nn.Module):
    """A user's causal self-attention with CRoPE: ComplexQKV, RotaryEmbedding, SDPA."""

    def __init__(self, d_model: int, n_heads: int, interleaved: bool = True) -> None:
        super().__init__()
        self.n_heads, head_dim = n_heads, d_model // n_heads
        self.qkv = ComplexQKV(d_model, interleaved=interleaved, head_dim=head_dim)
        self.rope = RotaryEmbedding(head_dim, interleaved=interleaved)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in self.qkv(x))
        q, k = self.rope.rotate_queries_and_keys(q, k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


@pytest.mark.parametrize("interleaved", [True, False])
def test_own_attention_layer_equals_the_gpt_adapter(interleaved):
    config = GPTConfig(
        n_layer=1,
        n_head=4,
        n_embd=32,
        vocab_size=20,
        pe="crope",
        pe_options={"interleaved": interleaved},
    )
    gpt_layer = GPT(config).eval().transformer.h[0].attn
    own = OwnAttention(32, 4, interleaved=interleaved)
    own.qkv.load_state_dict(gpt_layer.qkv.state_dict())
    own.out.load_state_dict(gpt_layer.c_proj.state_dict())
    x = torch.randn(2, 12, 32)
    torch.testing.assert_close(own(x), gpt_layer(x, torch.arange(12)))
    # negative control: a real projection in its place computes something else
    own.qkv = QKVProjection(config)
    assert not torch.allclose(own(x), gpt_layer(x, torch.arange(12)))


def test_the_adapter_builds_complex_qkv_and_names_no_decay_exemption():
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, vocab_size=20, pe="crope"))
    for block in model.transformer.h:
        assert isinstance(block.attn.qkv, ComplexQKV)
        assert block.attn.pe.no_weight_decay() == set()
    assert get_scheme("crope").name == "crope"


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ComplexLinear(7, 4), "in_features"),
        (lambda: ComplexLinear(8, 0), "out_features"),
        (
            lambda: ComplexLinear(4, 4, out_permutation=torch.tensor([0, 0, 1, 2])),
            "out_permutation",
        ),
        (lambda: ComplexQKV(15), "d_model"),
        (lambda: ComplexQKV(16, head_dim=3), "head_dim"),
        (lambda: ComplexQKV(16, head_dim=6), "head_dim"),
        (lambda: ComplexQKV(16, interleaved=False), "head_dim"),
        (lambda: complex_linear_weight(torch.randn(2, 3), torch.randn(3, 2)), "real and imag"),
        (lambda: complex_linear_weight(torch.randn(4), torch.randn(4)), "real and imag"),
        (lambda: crope_parameter_counts(0, 2, 10), "n_embd"),
        (lambda: crope_parameter_counts(16, 2.0, 10), "n_layer"),
    ],
)
def test_bad_shapes_raise_value_errors_naming_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "module, x, match",
    [
        (ComplexLinear(8, 4), torch.randn(2, 6), "in_features = 8"),
        (ComplexQKV(16), torch.randn(2, 3, 12), "d_model = 16"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_width(module, x, match):
    with pytest.raises(ValueError, match=match):
        module(x)


def test_crope_config_errors():
    with pytest.raises(ValueError, match="head_dim"):
        GPTConfig(n_embd=12, n_head=4, pe="crope")
    with pytest.raises(ValueError, match="pe_options"):
        GPTConfig(pe="crope", pe_options={"gamma": 1})


def test_the_experiment_is_registered_with_the_papers_shape():
    import ropelib.experiments  # noqa: F401  registers every experiment of the package
    from ropelib.experiments.runner import EXPERIMENTS

    experiment = EXPERIMENTS["crope"]
    configs = experiment.configs(False)
    labels = {
        f"{pe} {corpus}"
        for pe in ("rope", "crope", "learned")
        for corpus in ("shakespeare", "bible")
    }
    assert set(configs) == labels and experiment.seeds == 3
    for label, config in configs.items():
        assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (4, 4, 128, 128)
        assert label.split()[0] == config.pe and label.split()[1] == config.corpus
    assert set(experiment.configs(True)) == labels
    assert all(c.max_iters <= 10 for c in experiment.configs(True).values())
