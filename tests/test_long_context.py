"""RoVE, context extension and the inversion Monte Carlo (notebooks/09_long_context.md)."""

from __future__ import annotations

import math

import pytest
import torch

from ropelib.long_context import extend_context, inversion_probabilities
from ropelib.model import GPT, GPTConfig, LearnedPositions
from ropelib.rope import (
    interpolated_frequencies,
    ntk_frequencies,
    rope_frequencies,
    yarn_frequencies,
    yarn_logit_scale,
)
from ropelib.rove import with_rotary_values


def small(pe: str) -> GPT:
    torch.manual_seed(0)
    return GPT(
        GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=30, pe=pe)
    ).eval()


@pytest.mark.parametrize("pe", ["rope", "xpos", "rove", "crope"])
def test_extend_context_changes_every_rope_layer_and_restores(pe):
    model = small(pe)
    idx = torch.randint(0, 30, (1, 40))
    before = model(idx)[0]
    assert extend_context(model, "pi", 4.0) == 2
    layer = model.transformer.h[0].attn.pe
    torch.testing.assert_close(layer.rope.frequencies, rope_frequencies(16) / 4)
    assert not torch.allclose(model(idx)[0], before)
    extend_context(model, "yarn", 4.0)
    assert layer.logit_scale == pytest.approx((0.1 * math.log(4) + 1) ** 2)
    extend_context(model, "none")
    assert layer.logit_scale == 1.0
    torch.testing.assert_close(model(idx)[0], before)


def test_ntk_keeps_the_fastest_and_interpolates_the_slowest_pair():
    ntk, theta = ntk_frequencies(64, 8.0), rope_frequencies(64)
    assert ntk[0] == pytest.approx(theta[0].item())
    assert ntk[-1].item() == pytest.approx(theta[-1].item() / 8, rel=1e-12)


def test_yarn_lies_between_pi_and_the_original():
    yarn = yarn_frequencies(64, 4.0, 128)
    assert torch.all(yarn <= rope_frequencies(64) + 1e-15)
    assert torch.all(yarn >= interpolated_frequencies(64, 4.0) - 1e-15)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: extend_context(small("rope"), "linear", 2.0), "method"),
        (lambda: interpolated_frequencies(64, 0.5), "factor"),
        (lambda: yarn_logit_scale(True), "factor"),
        (lambda: yarn_frequencies(64, 2.0, 0), "original_context"),
        (lambda: inversion_probabilities(1), "context_length"),
        (lambda: with_rotary_values(LearnedPositions), "rotary"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_inversion_probabilities_are_probabilities_and_reproducible():
    first = inversion_probabilities(256, samples=2000)
    assert first == inversion_probabilities(256, samples=2000)
    assert all(0.0 <= value <= 1.0 for value in first.values())
    short, long = (
        inversion_probabilities(16, samples=4000),
        inversion_probabilities(2**15, samples=4000),
    )
    assert short["position inversion"] < long["position inversion"]


def test_rove_output_is_shift_equivariant_and_decodes_with_a_cache():
    model = small("rove")
    idx = torch.randint(0, 30, (2, 12))
    torch.testing.assert_close(
        model.forward_features(idx), model.forward_features(idx, start=321), atol=1e-4, rtol=1e-4
    )
    out = model.generate(idx[:, :4], 8, temperature=0)
    assert torch.equal(out, model.generate(idx[:, :4], 8, temperature=0, use_cache=False))
