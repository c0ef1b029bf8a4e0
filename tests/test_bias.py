"""Logit-bias schemes and truncated RoPE (the chapter *Position as a bias on the logits: ALiBi,
T5 and truncated RoPE*): ALiBi's slopes, T5's buckets, p-RoPE, and the GPT's bias hook."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ropelib.schemes  # noqa: F401  (registers the adapters)
from ropelib.bias import (
    ALiBi,
    PartialRoPE,
    T5RelativeBias,
    alibi_slopes,
    half_truncated_frequencies,
    partial_rope_frequencies,
    relative_distances,
    t5_relative_bucket,
)
from ropelib.model import GPT, POSITION_SCHEMES, ConfigError, GPTConfig, LayerCache
from ropelib.rope import RotaryEmbedding, rope_frequencies
from ropelib.train.optim import parameter_groups

SCHEMES = ["alibi", "t5", "p-rope"]
SMALL = dict(n_layer=2, n_head=4, n_embd=32, block_size=32, vocab_size=40)


def reference_slopes(n: int) -> list[float]:
    """Press et al.'s rule: 2^(-8h/n) for a power of two n; otherwise the slopes of the power
    of two below n, then every other slope of the sequence for twice that power."""

    def power_of_two(k: int) -> list[float]:
        return [2 ** (-8 * h / k) for h in range(1, k + 1)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    below = 2 ** math.floor(math.log2(n))
    return power_of_two(below) + reference_slopes(2 * below)[0::2][: n - below]


def reference_bucket(rp: torch.Tensor, bidirectional: bool, nb: int, md: int) -> torch.Tensor:
    """Mesh TF / Hugging Face `_relative_position_bucket` on rp = key - query, in float32."""
    buckets = torch.zeros_like(rp)
    if bidirectional:
        nb //= 2
        buckets += (rp > 0).long() * nb
        rp = rp.abs()
    else:
        rp = -torch.min(rp, torch.zeros_like(rp))
    exact = nb // 2
    large = exact + (torch.log(rp.float() / exact) / math.log(md / exact) * (nb - exact)).to(
        torch.long
    )
    large = torch.min(large, torch.full_like(large, nb - 1))
    return buckets + torch.where(rp < exact, rp, large)


def model_for(pe: str, **options) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(pe=pe, pe_options=options, **SMALL)).eval()
    if pe == "t5":  # a zero table would make every check trivial
        for block in model.transformer.h:
            torch.nn.init.normal_(block.attn.pe.t5.relative_attention_bias)
    return model


def test_schemes_are_registered():
    assert set(SCHEMES) <= set(POSITION_SCHEMES)


@pytest.mark.parametrize("n", [1, 2, 8, 12, 16, 24, 32, 6])
def test_alibi_slopes_follow_the_reference_rule(n):
    torch.testing.assert_close(
        alibi_slopes(n), torch.tensor(reference_slopes(n), dtype=torch.float64), rtol=1e-15, atol=0
    )


def test_alibi_slopes_for_8_and_12_heads_by_hand():
    assert alibi_slopes(8).tolist() == [1 / 2**h for h in range(1, 9)]
    twelve = [2.0**-h for h in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    assert alibi_slopes(12).tolist() == twelve


def test_t5_buckets_against_a_hand_computed_table():
    # decoder: 16 exact buckets, 16 + floor(16 ln(d/16) / ln 8) up to 128, then saturated
    decoder = {0: 0, 1: 1, 15: 15, 16: 16, 18: 16, 19: 17, 20: 17, 21: 18, 32: 21, 64: 26}
    decoder |= {98: 29, 99: 30, 112: 30, 113: 31, 127: 31, 128: 31, 5000: 31, -1: 0, -300: 0}
    assert t5_relative_bucket(torch.tensor(list(decoder))).tolist() == list(decoder.values())
    # encoder: 8 exact per direction, 8 + floor(8 ln(d/8) / ln 16); keys ahead: + 16
    encoder = {0: 0, 7: 7, 8: 8, 16: 10, 32: 12, 64: 14, 127: 15, 128: 15, 999: 15}
    encoder |= {-1: 17, -7: 23, -16: 26, -128: 31, -999: 31}
    got = t5_relative_bucket(torch.tensor(list(encoder)), bidirectional=True)
    assert got.tolist() == list(encoder.values())


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("nb, md", [(32, 128), (16, 64), (64, 512), (8, 20)])
def test_t5_buckets_equal_the_reference_code(bidirectional, nb, md):
    distance = torch.arange(-5000, 5001)  # m - n; the reference takes n - m
    got = t5_relative_bucket(distance, num_buckets=nb, max_distance=md, bidirectional=bidirectional)
    assert torch.equal(got, reference_bucket(-distance, bidirectional, nb, md))


def test_p_rope_keeps_high_frequencies_and_leaves_low_ones_untouched():
    assert torch.equal(partial_rope_frequencies(64, 0.75)[:24], rope_frequencies(64)[:24])
    assert (partial_rope_frequencies(64, 0.75)[24:] == 0).all()
    assert int(0.3 * 10 // 2) == 1 and (partial_rope_frequencies(10, 0.3) > 0).sum() == 1
    for interleaved in (True, False):
        q, k = torch.randn(2, 2, 3, 50, 32, dtype=torch.float64).unbind(0)
        p_rope = PartialRoPE(32, keep_fraction=0.5, interleaved=interleaved)
        rope = RotaryEmbedding(32, interleaved=interleaved)
        pq, pk = p_rope.rotate_queries_and_keys(q, k, offset=7)
        rq, rk = rope.rotate_queries_and_keys(q, k, offset=7)
        half = torch.arange(32)
        kept = half < 16 if interleaved else (half % 16) < 8  # the channels of pairs 0..7
        assert torch.equal(pq[..., ~kept], q[..., ~kept]) and torch.equal(
            pk[..., ~kept], k[..., ~kept]
        )
        torch.testing.assert_close(pq[..., kept], rq[..., kept], rtol=0, atol=1e-14)
        torch.testing.assert_close(pk[..., kept], rk[..., kept], rtol=0, atol=1e-14)


def test_p_rope_extremes_are_nope_and_rope():
    q, k = torch.randn(2, 1, 2, 9, 16).unbind(0)
    nope_q, nope_k = PartialRoPE(16, keep_fraction=0).rotate_queries_and_keys(q, k)
    assert torch.equal(nope_q, q) and torch.equal(nope_k, k)
    full_q, full_k = PartialRoPE(16, keep_fraction=1.0).rotate_queries_and_keys(q, k)
    rope_q, rope_k = RotaryEmbedding(16).rotate_queries_and_keys(q, k)
    assert torch.allclose(full_q, rope_q) and torch.allclose(full_k, rope_k)


def test_context_extension_keeps_p_ropes_dropped_pairs_unrotated():
    from ropelib.schemes.context import extend_context

    model = model_for("p-rope")
    rope = model.transformer.h[0].attn.pe.rope
    before = rope.frequencies.clone()
    q = torch.randn(1, 4, 10, 8)
    rope.rotate_queries_and_keys(q, q)  # fills the cos/sin cache
    assert extend_context(model, "linear", factor=4.0) == 2
    assert torch.equal(rope.frequencies[:3], before[:3] / 4) and (rope.frequencies[3:] == 0).all()
    rotated, _ = rope.rotate_queries_and_keys(q, q)
    expected, _ = RotaryEmbedding(8, frequencies=before / 4).rotate_queries_and_keys(q, q)
    torch.testing.assert_close(rotated, expected)  # the cache was rebuilt


def test_half_truncated_frequencies_are_modded_nanogpts():
    w = half_truncated_frequencies(128)
    expected = (1 / 1024) ** torch.linspace(0, 1, 32, dtype=torch.float64)
    assert torch.equal(w[:32], expected) and (w[32:] == 0).all()


@pytest.mark.parametrize("method", ["alibi", "t5", "t5-bidirectional"])
def test_bias_depends_only_on_the_distance(method):
    torch.manual_seed(0)
    if method == "alibi":
        module = ALiBi(6)
    else:
        module = T5RelativeBias(6, bidirectional=method.endswith("bidirectional"))
        torch.nn.init.normal_(module.relative_attention_bias)
    q_at, k_at = torch.arange(10, 40), torch.arange(0, 60)
    for shift in (1, 333, 10**6):
        assert torch.equal(module.bias(q_at, k_at), module.bias(q_at + shift, k_at + shift))
    bias = module.bias(q_at, k_at)
    distance = relative_distances(q_at, k_at, integer=True)
    for d in (-20, 0, 5, 39):  # every (m, n) with the same m - n has the same bias
        values = bias[:, distance == d]
        assert (values == values[:, :1]).all()
    if method == "alibi":
        expected = -alibi_slopes(6)[:, None, None] * distance.abs().double()
        torch.testing.assert_close(bias, expected.float())


@pytest.mark.parametrize("method", [ALiBi(4), T5RelativeBias(4)])
def test_sdpa_with_the_bias_equals_an_explicit_softmax(method):
    torch.manual_seed(1)
    if isinstance(method, T5RelativeBias):
        torch.nn.init.normal_(method.relative_attention_bias)
    q = torch.randn(2, 4, 5, 8, dtype=torch.float64)
    k, v = torch.randn(2, 2, 4, 12, 8, dtype=torch.float64).unbind(0)
    q_at, k_at = torch.arange(7, 12), torch.arange(12)  # 5 queries after 7 cached keys
    bias = method.bias(q_at, k_at).detach().double()
    visible = k_at[None, :] <= q_at[:, None]
    mask = torch.where(visible, bias, float("-inf"))
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    logits = q @ k.transpose(-1, -2) / math.sqrt(8) + bias
    weights = torch.softmax(logits.masked_fill(~visible, float("-inf")), dim=-1)
    torch.testing.assert_close(fused, weights @ v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("pe", SCHEMES)
def test_cached_decoding_equals_full_forward(pe):
    model = model_for(pe)
    idx = torch.randint(0, 40, (3, 20))
    logits, _ = model(idx)
    caches = [LayerCache() for _ in model.transformer.h]
    pieces = [model.lm_head(model.forward_features(idx[:, :7], caches=caches))]
    pieces.append(model.lm_head(model.forward_features(idx[:, 7:10], start=7, caches=caches)))
    for t in range(10, 20):
        pieces.append(
            model.lm_head(model.forward_features(idx[:, t : t + 1], start=t, caches=caches))
        )
    torch.testing.assert_close(torch.cat(pieces, dim=1), logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pe", SCHEMES)
def test_generate_with_and_without_cache_sample_the_same_tokens(pe):
    model = model_for(pe)
    prompt = torch.randint(0, 40, (2, 5))
    runs = [
        model.generate(
            prompt,
            12,
            temperature=0.8,
            top_k=5,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(1),
        )
        for use_cache in (True, False)
    ]
    assert runs[0].shape == (2, 17) and torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("pe", SCHEMES)
def test_schemes_are_causal_and_shift_invariant(pe):
    model = model_for(pe)
    idx = torch.randint(0, 40, (2, 16))
    logits, _ = model(idx)
    changed = idx.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 40
    torch.testing.assert_close(model(changed)[0][:, :9], logits[:, :9])
    shifted = model.lm_head(model.forward_features(idx, start=1000))
    torch.testing.assert_close(shifted, logits, atol=1e-4, rtol=1e-4)


def test_a_scheme_without_a_bias_keeps_the_fused_causal_path():
    model = model_for("rope")
    scheme = model.transformer.h[0].attn.pe
    assert scheme.attention_bias(torch.arange(4), torch.arange(4), torch.float32, "cpu") is None


def test_alibi_differs_from_nope_and_t5_table_is_learned_without_decay():
    idx = torch.randint(0, 40, (2, 16))
    assert not torch.allclose(model_for("alibi")(idx)[0], model_for("none")(idx)[0])
    model = GPT(GPTConfig(pe="t5", **SMALL))
    tables = [b.attn.pe.t5.relative_attention_bias for b in model.transformer.h]
    assert all(t.shape == (32, 4) and (t == 0).all() for t in tables)
    decay, keep = parameter_groups(model, 0.1)
    assert {id(t) for t in tables} <= {id(p) for p in keep["params"]}
    _, loss = model(idx, idx)
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in tables)


def test_alibi_in_half_precision():
    model = model_for("alibi").half()
    assert model.transformer.h[0].attn.pe.alibi.slopes.dtype == torch.float64
    bias = model.transformer.h[0].attn.pe.attention_bias(
        torch.arange(3), torch.arange(3), torch.float16, "cpu"
    )
    assert bias.dtype == torch.float16 and bias[0, 2, 0] == -0.5  # slope 1/4, distance 2


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ALiBi(0), "n_heads"),
        (lambda: alibi_slopes(True), "n_heads"),
        (lambda: T5RelativeBias(4, num_buckets=1), "num_buckets"),
        (lambda: T5RelativeBias(4, num_buckets=9, bidirectional=True), "num_buckets"),
        (lambda: T5RelativeBias(4, max_distance=16), "max_distance"),
        (lambda: T5RelativeBias(4, bidirectional=1), "bidirectional"),
        (lambda: T5RelativeBias(4).bias(torch.arange(3.0), torch.arange(3)), "q_positions"),
        (lambda: ALiBi(4).bias(torch.arange(3), torch.zeros(2, 2)), "k_positions"),
        (lambda: t5_relative_bucket(torch.ones(3)), "distance"),
        (lambda: PartialRoPE(32, keep_fraction=2), "keep_fraction"),
        (lambda: PartialRoPE(31), "head_dim"),
        (lambda: half_truncated_frequencies(6), "head_dim"),
        (lambda: half_truncated_frequencies(16, lowest=2.0), "lowest"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    "pe, options, name",
    [
        ("t5", {"max_distance": 3}, "max_distance"),
        ("t5", {"bidirectional": True}, "pe_options"),
        ("p-rope", {"keep_fraction": 1.5}, "keep_fraction"),
        ("alibi", {"slopes": [1.0]}, "pe_options"),
    ],
)
def test_bad_scheme_options_are_config_errors(pe, options, name):
    with pytest.raises(ConfigError, match=name):
        GPTConfig(pe=pe, pe_options=options, **SMALL)
