"""RoVE: the standalone `RotaryValues` in a user's own attention layer, and the GPT adapters.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ropelib.schemes  # noqa: F401  (registers the GPT adapters)
from ropelib.model import GPT, GPTConfig, LayerCache
from ropelib.rope import RotaryEmbedding, rope_frequencies
from ropelib.rove import RotaryValues
from ropelib.schemes.rope import RoPEScheme
from ropelib.schemes.rove import with_rotary_values


class Attention(nn.Module):
    """A user's causal self-attention with RoVE at its three points."""

    def __init__(self, d_model: int, n_head: int, layout: str = "bhtd", rotate_back=True):
        super().__init__()
        self.n_head, self.layout, self.rotate_back = n_head, layout, rotate_back
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.rove = RotaryValues(d_model // n_head, layout=layout)

    def forward(self, x, offset=0, cache=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, -1).unbind(2)  # [B, T, H, D]
        if self.layout == "bhtd":
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        q, k = self.rove.rotate_queries_and_keys(q, k, offset=offset)
        v = self.rove.rotate_values(v, offset=offset)
        if self.layout == "bthd":
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k = cache["k"] = torch.cat([cache.get("k", k[:, :, :0]), k], dim=2)
            v = cache["v"] = torch.cat([cache.get("v", v[:, :, :0]), v], dim=2)
        # causal within the new tokens; a cache is filled by one prefill, then single tokens
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        if self.layout == "bthd":
            y = y.transpose(1, 2)
        if self.rotate_back:
            y = self.rove.unrotate_output(y, offset=offset)
        return y if self.layout == "bthd" else y.transpose(1, 2)  # [B, T, H, D]


def attention(layout="bhtd", rotate_back=True) -> Attention:
    torch.manual_seed(0)
    return Attention(32, 4, layout, rotate_back).double().eval()


X = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@torch.no_grad()
@pytest.mark.parametrize("layout", ["bhtd", "bthd"])
def test_decoding_with_an_offset_equals_the_full_computation(layout):
    layer = attention(layout)
    full = layer(X)
    cache: dict = {}
    steps = [layer(X[:, t : t + 1], offset=t, cache=cache) for t in range(10)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    # prefill 6 tokens, then decode the rest at offsets 6, 7, ...
    cache = {}
    prefill = layer(X[:, :6], cache=cache)
    rest = [layer(X[:, t : t + 1], offset=t, cache=cache) for t in range(6, 10)]
    torch.testing.assert_close(torch.cat([prefill, *rest], dim=1), full)


@torch.no_grad()
def test_the_layouts_agree():
    torch.testing.assert_close(attention("bhtd")(X), attention("bthd")(X))


@torch.no_grad()
def test_the_output_depends_on_relative_positions_only():
    layer = attention()
    torch.testing.assert_close(layer(X, offset=777), layer(X), atol=1e-9, rtol=0)
    # negative control: without the back-rotation the output moves with the positions
    no_back = attention(rotate_back=False)
    assert not torch.allclose(no_back(X, offset=777), no_back(X), atol=1e-3)


@torch.no_grad()
def test_values_are_rotated_by_the_relative_position():
    """With one key and one query, y = R(j - i) v: the derivation, in one step."""
    rove = RotaryValues(8)
    v = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    i, j = 13, 5
    y = rove.unrotate_output(rove.rotate_values(v, offset=j), offset=i)
    expected = RotaryEmbedding(8)(v, torch.tensor([j - i]))
    torch.testing.assert_close(y, expected)
    # and the back-rotation inverts the rotation at the same positions
    positions = torch.tensor([3])
    back = rove.unrotate_output(rove.rotate_values(v, positions), positions)
    torch.testing.assert_close(back, v)


def test_explicit_positions_equal_offsets_and_dtypes_are_kept():
    rove = RotaryValues(16)
    v = torch.randn(2, 3, 5, 16)
    positions = torch.arange(4, 9)
    torch.testing.assert_close(rove.rotate_values(v, positions), rove.rotate_values(v, offset=4))
    torch.testing.assert_close(
        rove.unrotate_output(v, positions), rove.unrotate_output(v, offset=4)
    )
    half = rove.rotate_values(v.bfloat16(), offset=4)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), rove.rotate_values(v, offset=4), atol=0.05, rtol=0.02)


def test_rotate_queries_and_keys_is_rope():
    rove, rope = RotaryValues(16), RotaryEmbedding(16)
    q, k = torch.randn(2, 2, 3, 16), torch.randn(2, 2, 7, 16)
    got = rove.rotate_queries_and_keys(q, k, offset=2)
    torch.testing.assert_close(got[0], rope(q, offset=6))  # queries: the last 3 of 2..8
    torch.testing.assert_close(got[1], rope(k, offset=2))
    assert torch.equal(rove.rotary.frequencies, rope_frequencies(16))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: r.rotate_values(torch.randn(2, 3, 16)), "v must be a floating-point tensor"),
        (lambda r: r.rotate_values(torch.randn(2, 3, 5, 8)), "v must have head_dim = 16"),
        (lambda r: r.unrotate_output(torch.ones(1, 1, 2, 16, dtype=torch.long)), "y must"),
        (lambda r: r.unrotate_output(torch.randn(1, 1, 2, 16), offset=-1), "offset"),
        (lambda r: r.unrotate_output(torch.randn(1, 1, 2, 16), [0, 1], offset=2), "either"),
        (lambda r: r.rotate_values(torch.randn(1, 1, 4, 16), torch.arange(3)), "positions"),
        (
            lambda r: r.rotate_queries_and_keys(torch.randn(1, 1, 2, 8), torch.randn(1, 1, 2, 16)),
            "q must",
        ),
        (lambda r: r.rotate_queries_and_keys(torch.randn(1, 1, 2, 16), "k"), "k must"),
        (lambda r: RotaryValues(16, layout="btdh"), "layout"),
        (lambda r: RotaryValues(15), "head_dim"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call(RotaryValues(16))


def small(pe: str) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=30, pe=pe)
    return GPT(config).eval()


@pytest.mark.parametrize("pe", ["rove", "rove-xpos"])
def test_gpt_adapters_are_shift_invariant_decode_with_a_cache_and_add_no_parameters(pe):
    model = small(pe)
    idx = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = model.forward_features(idx)
        torch.testing.assert_close(
            model.forward_features(idx, start=321), features, atol=1e-4, rtol=1e-4
        )
        caches = [LayerCache() for _ in model.transformer.h]
        steps = [
            model.forward_features(idx[:, t : t + 1], start=t, caches=caches) for t in range(12)
        ]
        torch.testing.assert_close(torch.cat(steps, 1), features, atol=1e-5, rtol=1e-5)
    rope = small("rope" if pe == "rove" else "xpos")
    assert model.num_parameters() == rope.num_parameters()
    for block in model.transformer.h:
        assert block.attn.pe.rove.rotary is block.attn.pe.rope  # values turn with the keys


def test_rove_differs_from_rope_with_the_same_weights():
    rove, rope = small("rove"), small("rope")
    rove.load_state_dict(rope.state_dict())
    idx = torch.randint(0, 30, (1, 12), generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(rove(idx)[0], rope(idx)[0], atol=1e-4)


def test_with_rotary_values_needs_a_rope_family_scheme():
    with pytest.raises(ValueError, match="scheme must be a RoPE-family"):
        with_rotary_values(nn.Module, "X")
    with pytest.raises(ValueError, match="scheme must be a RoPE-family"):
        with_rotary_values("rope", "X")
    assert issubclass(with_rotary_values(RoPEScheme, "X"), RoPEScheme)


def test_adapter_options_are_checked_like_the_scheme_they_wrap():
    with pytest.raises(ValueError):
        GPT(
            GPTConfig(
                n_layer=1, n_head=2, n_embd=32, vocab_size=30, pe="rove", pe_options={"gamma": 0.3}
            )
        )
    model = GPT(
        GPTConfig(
            n_layer=1, n_head=2, n_embd=32, vocab_size=30, pe="rove-xpos", pe_options={"gamma": 0.3}
        )
    )
    assert math.isfinite(float(model(torch.zeros(1, 4, dtype=torch.long))[0].detach().sum()))
