"""RoVE, context extension and the inversion Monte Carlo (notebooks/09_long_context.md)."""

from __future__ import annotations

import json
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


def test_model_inversion_rejects_non_rope_schemes_and_short_contexts():
    from ropelib.long_context import model_inversion_probabilities

    tokens = torch.randint(0, 30, (500,))
    with pytest.raises(ValueError, match="RoPE-family"):
        model_inversion_probabilities(small("learned"), tokens, 64, 100)
    with pytest.raises(ValueError, match="context_length"):
        model_inversion_probabilities(small("rope"), tokens, 1, 100)


def test_model_inversion_of_xpos_includes_its_decay():
    """xPos's decay makes far copies score lower than RoPE's scores alone would."""
    from ropelib.long_context import model_inversion_probabilities

    tokens = torch.randint(0, 30, (2000,))
    rope, xpos = small("rope"), small("xpos")
    xpos.load_state_dict(rope.state_dict())  # the same weights: only the scores differ
    a = model_inversion_probabilities(rope, tokens, 4096, 4000)
    b = model_inversion_probabilities(xpos, tokens, 4096, 4000)
    assert all(0.0 <= v <= 1.0 for v in (*a.values(), *b.values()))
    assert b["position inversion"] < a["position inversion"]
    assert a == model_inversion_probabilities(rope, tokens, 4096, 4000)  # reproducible


def test_context_extension_runner_trains_evaluates_and_resumes(tmp_path, monkeypatch):
    from ropelib.long_context import (
        EXTENSIONS,
        FACTORS,
        context_extension_summary,
        context_extension_table,
        run_context_extension,
    )
    from ropelib.model import import_chapters

    import_chapters()
    text = tmp_path / "corpus.txt"
    text.write_text("".join(chr(97 + (i * 7) % 26) for i in range(40_000)))
    monkeypatch.chdir(tmp_path)
    import ropelib.train as train_module

    quick = train_module.PRESETS["cpu-tiny"]
    monkeypatch.setitem(train_module.PRESETS, "cpu-tiny", dict(quick, corpus=str(text)))
    records = run_context_extension(
        quick=True, seeds=1, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs"
    )
    assert [r["label"] for r in records] == ["rope", "rove", "xpos", "rove-xpos"]
    for record in records:
        assert set(record["loss"]) == {"trained", *EXTENSIONS}
        for method in EXTENSIONS:
            assert set(record["loss"][method]) == {f"{f}x" for f in FACTORS}
            assert all(math.isfinite(v) for v in record["loss"][method].values())
    assert (tmp_path / "runs" / "rove" / "rope-seed0" / "checkpoint.json").exists()
    again = run_context_extension(
        quick=True, seeds=1, results_dir=tmp_path / "results", runs_dir=tmp_path / "runs"
    )
    assert again == json.loads(json.dumps(records))  # finished runs are read back, not redone
    summary = context_extension_summary(tmp_path / "results")
    assert summary["rope"]["pi"]["8x"][0] == records[0]["loss"]["pi"]["8x"]
    assert "| rope | yarn |" in context_extension_table(tmp_path / "results")
