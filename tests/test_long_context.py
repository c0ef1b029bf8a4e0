"""Context extension (the rope-type registry), its model layer, and the inversion Monte Carlo.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import math

import pytest
import torch

import ropelib.schemes  # noqa: F401  (registers the GPT adapters)
from ropelib.long_context import inversion_probabilities, rotary_scores
from ropelib.model import GPT, GPTConfig
from ropelib.rope import RotaryEmbedding, rope_frequencies
from ropelib.scaling import (
    ROPE_SCALING,
    attention_factor_to_logit_scale,
    register_rope_scaling,
    scaled_frequencies,
    scaling_parameters,
    yarn_attention_factor,
    yarn_logit_scale,
)
from ropelib.schemes.context import extend_context, model_inversion_probabilities

YARN = dict(factor=4.0, original_max_position_embeddings=128)


def small(pe: str) -> GPT:
    torch.manual_seed(0)
    return GPT(
        GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=30, pe=pe)
    ).eval()


@pytest.mark.parametrize("pe", ["rope", "xpos", "rove", "rove-xpos", "crope"])
def test_extend_context_changes_every_rope_layer_and_restores(pe):
    model = small(pe)
    idx = torch.randint(0, 30, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(idx)[0]
        assert extend_context(model, "linear", factor=4.0) == 2
        layer = model.transformer.h[0].attn.pe
        torch.testing.assert_close(layer.rope.frequencies, rope_frequencies(16) / 4)
        assert not torch.allclose(model(idx)[0], before)
        extend_context(model, "yarn", factor=4.0)
        assert layer.logit_scale == pytest.approx((0.1 * math.log(4) + 1) ** 2)
        extend_context(model, "yarn", factor=4.0, attention_factor=0.5)
        assert layer.logit_scale == 0.25  # HF's attention factor on cos and sin, squared
        extend_context(model, "default")
        assert layer.logit_scale == 1.0
        torch.testing.assert_close(model(idx)[0], before)


def test_extend_context_leaves_non_rotary_models_alone():
    model = small("learned")
    assert extend_context(model, "ntk", factor=2.0) == 0


def test_rove_values_follow_the_new_frequencies():
    """After extension, RoVE's output still depends on relative positions only."""
    model = small("rove")
    extend_context(model, "ntk", factor=4.0)
    idx = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_features(idx, start=500), model.forward_features(idx), atol=1e-4,
            rtol=1e-4,
        )  # fmt: skip


def test_extend_context_defaults_the_original_context_to_the_block_size():
    model = small("rope")
    extend_context(model, "yarn", factor=4.0)
    expected = scaled_frequencies("yarn", 16, factor=4.0, original_max_position_embeddings=16)
    torch.testing.assert_close(model.transformer.h[1].attn.pe.rope.frequencies, expected[0])
    extend_context(model, "yarn", factor=4.0, original_max_position_embeddings=64)
    other = scaled_frequencies("yarn", 16, factor=4.0, original_max_position_embeddings=64)
    torch.testing.assert_close(model.transformer.h[1].attn.pe.rope.frequencies, other[0])


def test_the_logit_scale_is_the_square_of_the_attention_factor():
    """HF multiplies cos and sin by a: both q and k, so q·k by a²."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 1, 2, 5, 16, dtype=torch.float64).unbind(0)
    frequencies, a = scaled_frequencies("yarn", 16, **YARN)
    rope = RotaryEmbedding(16, frequencies=frequencies)
    q_rot, k_rot = rope.rotate_queries_and_keys(q, k)
    hf_scores = (a * q_rot) @ (a * k_rot).mT  # cos and sin times a, on q and on k
    ours = attention_factor_to_logit_scale(a) * (q_rot @ k_rot.mT)
    torch.testing.assert_close(ours, hf_scores, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a * (q_rot @ k_rot.mT), hf_scores)  # not a itself
    assert attention_factor_to_logit_scale(a) == pytest.approx(yarn_logit_scale(4.0))


def test_ntk_keeps_the_fastest_and_interpolates_the_slowest_pair():
    ntk, theta = scaled_frequencies("ntk", 64, factor=8.0)[0], rope_frequencies(64)
    assert ntk[0] == pytest.approx(theta[0].item())
    assert ntk[-1].item() == pytest.approx(theta[-1].item() / 8, rel=1e-12)


def test_yarn_paper_lies_between_pi_and_the_original_and_ramps_in_the_turns():
    yarn, attention = scaled_frequencies("yarn-paper", 64, **YARN)
    theta = rope_frequencies(64)
    assert torch.all(yarn <= theta + 1e-15) and torch.all(yarn >= theta / 4 - 1e-15)
    turns = 128 * theta / (2 * math.pi)
    gamma = (turns - 1) / 31
    middle = (turns > 1) & (turns < 32)
    assert middle.sum() >= 3
    blend = (yarn[middle] / theta[middle] - 1 / 4) / (1 - 1 / 4)  # recovers γ(r_j)
    torch.testing.assert_close(blend, gamma[middle])
    assert attention == 0.1 * math.log(4) + 1


def test_yarn_ramps_in_the_pair_index_and_differs_from_yarn_paper():
    """The released code ramps linearly in j between floor/ceil correction dims."""
    D, L, s, base = 128, 2048, 10.0, 10000.0

    def dim(turns):
        return D * math.log(L / (turns * 2 * math.pi)) / (2 * math.log(base))

    low, high = math.floor(dim(32)), math.ceil(dim(1))
    keep = 1 - ((torch.arange(D // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    theta = rope_frequencies(D, base)
    parameters = dict(factor=s, original_max_position_embeddings=L)
    released = scaled_frequencies("yarn", D, **parameters)[0]
    torch.testing.assert_close(released, theta / s * (1 - keep) + theta * keep)
    ratio = released / scaled_frequencies("yarn-paper", D, **parameters)[0]
    torch.testing.assert_close(ratio[: low + 1], torch.ones(low + 1, dtype=torch.float64))
    assert ratio.max() > 2.5 and int((ratio - 1).abs().gt(0.01).sum()) == 24
    untruncated = scaled_frequencies("yarn", D, truncate=False, **parameters)[0]
    assert not torch.allclose(untruncated, released)  # the rounding moves the ramp's ends


def test_yarn_attention_factor_follows_hugging_face():
    assert yarn_attention_factor(1.0) == 1.0 and yarn_attention_factor(0.5 + 0.5) == 1.0
    assert yarn_attention_factor(4.0) == 0.1 * math.log(4.0) + 1
    assert yarn_attention_factor(4.0, attention_factor=0.7) == 0.7
    assert yarn_attention_factor(40.0, mscale=1.0, mscale_all_dim=1.0) == 1.0
    ratio = (0.1 * 0.707 * math.log(40) + 1) / (0.1 * math.log(40) + 1)
    assert yarn_attention_factor(40.0, mscale=0.707, mscale_all_dim=1.0) == pytest.approx(ratio)
    # one of the two alone is ignored, as in Hugging Face
    assert yarn_attention_factor(40.0, mscale=0.707) == yarn_attention_factor(40.0)


def test_dynamic_ntk_is_rope_within_the_context_and_static_ntk_at_factor_one():
    dyn = dict(factor=4.0, original_max_position_embeddings=256)
    for n in (None, 0, 1, 256):
        assert torch.equal(
            scaled_frequencies("dynamic", 64, seq_len=n, **dyn)[0], rope_frequencies(64)
        )
    at_4L = scaled_frequencies(
        "dynamic", 64, seq_len=1024, factor=1.0, original_max_position_embeddings=256
    )[0]
    torch.testing.assert_close(at_4L, scaled_frequencies("ntk", 64, factor=4.0)[0])


def test_longrope_switches_from_short_to_long_factors_past_the_original_length():
    short, long = [1.0 + j for j in range(8)], [2.0 + j for j in range(8)]
    lr = dict(short_factor=short, long_factor=long, original_max_position_embeddings=64)
    theta = rope_frequencies(16)
    for n, factors in ((None, short), (64, short), (65, long)):
        frequencies, a = scaled_frequencies("longrope", 16, seq_len=n, factor=4.0, **lr)
        torch.testing.assert_close(frequencies, theta / torch.tensor(factors).double())
        assert a == pytest.approx(math.sqrt(1 + math.log(4) / math.log(64)))
    assert scaled_frequencies("longrope", 16, factor=1.0, **lr)[1] == 1.0


def test_llama3_is_the_paper_ramp_in_turns_with_its_band_factors():
    bands = dict(factor=8.0, original_max_position_embeddings=8192)
    llama3, a = scaled_frequencies(
        "llama3", 128, base=5e5, low_freq_factor=1.0, high_freq_factor=4.0, **bands
    )
    paper, _ = scaled_frequencies(
        "yarn-paper", 128, base=5e5, beta_slow=1.0, beta_fast=4.0, **bands
    )
    torch.testing.assert_close(llama3, paper, rtol=1e-14, atol=0)
    assert a == 1.0


def test_proportional_keeps_the_full_head_frequencies_and_zeros_the_rest():
    frequencies, a = scaled_frequencies(
        "proportional", 64, base=1e6, factor=2.0, partial_rotary_factor=0.25
    )
    assert len(frequencies) == 32 and a == 1.0
    torch.testing.assert_close(frequencies[:8], rope_frequencies(64, 1e6)[:8] / 2)
    assert not frequencies[8:].any()
    partial = scaled_frequencies("linear", 64, factor=2.0, partial_rotary_factor=0.25)[0]
    torch.testing.assert_close(partial, rope_frequencies(16) / 2)  # 16 rotated channels


def test_a_user_can_register_a_rope_type():
    @register_rope_scaling("test-half-base")
    def half_base(dim, *, base, seq_len=None, shift: float = 0.0):
        return rope_frequencies(dim, base / 2) * (1 + shift), 1.5

    try:
        assert "test-half-base" in ROPE_SCALING
        frequencies, a = scaled_frequencies("test-half-base", 32, shift=0.5)
        torch.testing.assert_close(frequencies, rope_frequencies(32, 5000.0) * 1.5)
        assert a == 1.5 and scaling_parameters("test-half-base") == {"shift": False}
        model = small("rope")
        assert extend_context(model, "test-half-base") == 2
        assert model.transformer.h[0].attn.pe.logit_scale == 2.25
        with pytest.raises(ValueError, match="takes no parameter 'factor'"):
            scaled_frequencies("test-half-base", 32, factor=2.0)
    finally:
        ROPE_SCALING.pop("test-half-base")


def test_every_type_returns_float64_frequencies_one_per_rotated_pair():
    examples = {
        "default": {},
        "linear": dict(factor=2.0),
        "ntk": dict(factor=2.0),
        "dynamic": dict(factor=2.0, original_max_position_embeddings=64),
        "yarn": YARN,
        "yarn-paper": YARN,
        "longrope": dict(
            short_factor=[1.0] * 16,
            long_factor=[2.0] * 16,
            factor=2.0,
            original_max_position_embeddings=64,
        ),
        "llama3": dict(YARN, low_freq_factor=1.0, high_freq_factor=4.0),
        "proportional": dict(partial_rotary_factor=0.5),
    }
    assert set(examples) == set(ROPE_SCALING)
    for name, parameters in examples.items():
        frequencies, a = scaled_frequencies(name, 32, seq_len=100, **parameters)
        assert frequencies.dtype == torch.float64 and frequencies.shape == (16,), name
        assert isinstance(a, float) and a > 0, name


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: extend_context(small("rope"), "pi", factor=2.0), "rope_type must be one of"),
        (lambda: scaled_frequencies("none", 32), "rope_type must be one of"),
        (lambda: scaled_frequencies("yarn", 32, factor=2.0), "original_max_position_emb"),
        (lambda: scaled_frequencies("linear", 32), "needs the parameter 'factor'"),
        (lambda: scaled_frequencies("linear", 32, factor=2.0, beta_fast=4), "beta_fast"),
        (lambda: scaled_frequencies("linear", 64, factor=0.5), "factor"),
        (lambda: scaled_frequencies("ntk", 64, factor=float("nan")), "factor"),
        (lambda: scaled_frequencies("default", 31), "partial_rotary_factor"),
        (lambda: scaled_frequencies("default", 0), "head_dim"),
        (lambda: scaled_frequencies("default", 32, base=1.0), "base"),
        (lambda: scaled_frequencies("default", 32, seq_len=-1), "seq_len"),
        (lambda: scaled_frequencies("default", 32, partial_rotary_factor=1.5), "partial_rot"),
        (lambda: scaled_frequencies("ntk", 2, factor=2.0), "4 rotated channels"),
        (
            lambda: scaled_frequencies("yarn", 32, factor=2.0, original_max_position_embeddings=0),
            "original_max",
        ),
        (lambda: scaled_frequencies("yarn", 32, beta_fast=1.0, **YARN), "beta_fast"),
        (lambda: scaled_frequencies("yarn", 32, truncate="yes", **YARN), "truncate"),
        (lambda: scaled_frequencies("yarn-paper", 32, truncate=True, **YARN), "truncate"),
        (lambda: scaled_frequencies("yarn", 32, attention_factor=-1.0, **YARN), "attention_f"),
        (
            lambda: scaled_frequencies(
                "longrope",
                32,
                short_factor=[1.0] * 3,
                long_factor=[1.0] * 16,
                factor=2.0,
                original_max_position_embeddings=8,
            ),
            "short_factor",
        ),
        (
            lambda: scaled_frequencies(
                "longrope",
                32,
                short_factor=[1.0] * 16,
                long_factor=[1.0] * 16,
                original_max_position_embeddings=8,
            ),
            "factor",
        ),
        (
            lambda: scaled_frequencies(
                "llama3", 32, low_freq_factor=4.0, high_freq_factor=1.0, **YARN
            ),
            "high_freq_factor",
        ),
        (lambda: scaled_frequencies("proportional", 32, partial_rotary_factor=2.0), "partial"),
        (
            lambda: extend_context(small("rope"), "linear", factor=2.0, partial_rotary_factor=0.5),
            "partial_rotary_factor",
        ),
        (lambda: register_rope_scaling("")(lambda dim: None), "name"),
        (lambda: register_rope_scaling("x")(lambda dim: None), "base and seq_len"),
        (lambda: yarn_logit_scale(True), "factor"),
        (lambda: inversion_probabilities(1), "context_length"),
        (lambda: model_inversion_probabilities(small("rope"), torch.arange(9), 1, 10), "context"),
        (lambda: model_inversion_probabilities(small("learned"), torch.arange(9), 8, 10), "RoPE"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rotary_scores_are_rope_dot_products():
    """rotary_scores(q, k, d) = qᵀ R(d) k: RoPE's score of a query at 0 and a key at d."""
    q, k = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    d = torch.tensor([0, 1, 7, 100, 3000])
    rope = RotaryEmbedding(8)
    queries = rope(q.view(1, 1, 5, 8), torch.zeros(5, dtype=torch.long))
    keys = rope(k.view(1, 1, 5, 8), d)
    expected = (queries * keys).sum(-1).view(5)
    torch.testing.assert_close(rotary_scores(q, k, d, rope_frequencies(8)), expected)


def test_inversion_probabilities_are_probabilities_and_reproducible():
    first = inversion_probabilities(256, samples=2000)
    assert first == inversion_probabilities(256, samples=2000)
    assert all(0.0 <= value <= 1.0 for value in first.values())
    short, long = (
        inversion_probabilities(16, samples=4000),
        inversion_probabilities(2**15, samples=4000),
    )
    assert short["position inversion"] < long["position inversion"]


def test_model_inversion_of_xpos_includes_its_decay():
    """xPos's decay makes far copies score lower than RoPE's scores alone would."""
    tokens = torch.randint(0, 30, (2000,), generator=torch.Generator().manual_seed(0))
    rope, xpos = small("rope"), small("xpos")
    xpos.load_state_dict(rope.state_dict())  # the same weights: only the scores differ
    a = model_inversion_probabilities(rope, tokens, 4096, 4000)
    b = model_inversion_probabilities(xpos, tokens, 4096, 4000)
    assert all(0.0 <= v <= 1.0 for v in (*a.values(), *b.values()))
    assert b["position inversion"] < a["position inversion"]
    assert a == model_inversion_probabilities(rope, tokens, 4096, 4000)  # reproducible


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ropelib.experiments.runner import run_lock
with run_lock(Path(sys.argv[1])) as mine:
    print(mine, flush=True)
    time.sleep(120)
"""


def test_context_extension_runner_claims_each_run_once_and_resumes(tmp_path, monkeypatch):
    """Two workers: a run another worker holds is skipped, and each record is written once."""
    import subprocess
    import sys

    import ropelib.train.config as train_config
    from ropelib.experiments.context_extension import (
        FACTORS,
        METHODS,
        context_extension_summary,
        context_extension_table,
        run_context_extension,
    )

    LABELS = sorted(["rope", "rove", "xpos", "rove-xpos"])  # records come sorted by run
    text = tmp_path / "corpus.txt"
    text.write_text("".join(chr(97 + (i * 7) % 26) for i in range(40_000)))
    monkeypatch.chdir(tmp_path)
    quick = train_config.PRESETS["cpu-tiny"]
    monkeypatch.setitem(train_config.PRESETS, "cpu-tiny", dict(quick, corpus=str(text)))
    results, runs = tmp_path / "results" / "context-extension", tmp_path / "runs"
    lock = runs / "context-extension" / "rope-seed0.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "True"  # the other worker owns rope-seed0
        records = run_context_extension(True, 1, results, runs)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(r["label"] for r in records) == ["rove", "rove-xpos", "xpos"]
    assert not (results / "rope-seed0.json").exists()
    for record in records:
        keys = {"experiment", "run", "label", "seed", "quick", "config", "git", "hardware"}
        assert keys <= set(record)
        assert record["experiment"] == "context-extension" and record["quick"] is True
        assert set(record["loss"]) == {"trained", *METHODS}
        for method in METHODS:
            assert set(record["loss"][method]) == {f"{f}x" for f in FACTORS}
            assert all(math.isfinite(v) for v in record["loss"][method].values())
    before = {path.name: path.read_text() for path in results.glob("*.json")}
    again = run_context_extension(True, 1, results, runs)  # the lock is free now
    assert [r["run"] for r in again] == [f"{label}-seed0" for label in LABELS]
    assert {p.name: p.read_text() for p in results.glob("*.json") if p.name in before} == before
    assert list(tmp_path.glob("**/*.tmp")) == []  # no temp files left behind
    for run in ("rope-seed0", "rove-seed0"):  # each model trained once: no repeated steps
        lines = (runs / "rove" / run / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == len(set(lines))
    summary = context_extension_summary(results)
    rope = next(r for r in again if r["label"] == "rope")
    assert summary["rope"]["linear"]["8x"][0] == rope["loss"]["linear"]["8x"]
    assert "| rope | yarn-paper |" in context_extension_table(results)


def test_the_stored_context_extension_results_still_read():
    from pathlib import Path

    from ropelib.experiments.context_extension import context_extension_summary

    stored = Path(__file__).resolve().parent.parent / "results" / "context-extension"
    summary = context_extension_summary(stored)
    assert set(summary) == {"rope", "rove", "xpos", "rove-xpos"}
    # the stored runs name their methods "none", "pi", "ntk", "yarn" (the paper's ramp)
    assert set(summary["rope"]) == {"trained", "default", "linear", "ntk", "yarn-paper"}
    assert all(cell[2] == 3 for cell in summary["rope"]["yarn-paper"].values())


def test_context_extension_256_measures_every_type_on_the_same_targets(tmp_path, monkeypatch):
    """The quick run: a base model, every rope type without a fine-tune, one fine-tune per
    type from the base weights, and a record that the summary and the table read."""
    import ropelib.train.config as train_config
    from ropelib.experiments.context_extension import (
        FINE_TUNED,
        LONG_FACTORS,
        LONG_METHODS,
        context_extension_256_summary,
        context_extension_256_table,
        run_context_extension_256,
    )
    from ropelib.train.checkpoint import load_model

    text = tmp_path / "corpus.txt"
    text.write_text("".join(chr(97 + (i * 7) % 26) for i in range(40_000)))
    monkeypatch.chdir(tmp_path)
    quick = train_config.PRESETS["cpu-tiny"]
    monkeypatch.setitem(train_config.PRESETS, "cpu-tiny", dict(quick, corpus=str(text)))
    results, runs = tmp_path / "results" / "context-extension-256", tmp_path / "runs"
    (record,) = run_context_extension_256(True, 1, results, runs)
    lengths = {f"{f}x" for f in LONG_FACTORS}
    assert set(record["loss"]) == set(LONG_METHODS) == set(record["key_retrieval"])
    assert set(record["loss"]["default"]) == lengths
    assert set(record["loss"]["yarn"]) == lengths - {"1x"}  # factor 1 is RoPE itself
    assert set(record["fine_tuned"]) == set(FINE_TUNED)
    for method in LONG_METHODS[1:]:  # each type changes the scores past the context
        assert record["loss"][method]["8x"]["loss"] != record["loss"]["default"]["8x"]["loss"]
    for method, tune in record["fine_tunes"].items():
        assert tune["config"]["block_size"] == 4 * record["config"]["block_size"]
        assert tune["config"]["init_from"].endswith("base")
        assert (tune["config"]["rope_scaling"].get("rope_type") or "default") == method
        assert set(record["fine_tuned"][method]["loss"]) == lengths
    base, _ = load_model(runs / "context-extension-256" / "rope-seed0" / "base")
    tuned, config = load_model(runs / "context-extension-256" / "rope-seed0" / "tune-yarn")
    assert config.rope_scaling["rope_type"] == "yarn"
    assert not torch.equal(base.lm_head.weight, tuned.lm_head.weight)  # it trained
    summary = context_extension_256_summary(results)
    tuned_8x = record["fine_tuned"]["yarn"]["loss"]["8x"]["loss"]
    assert summary[("yarn", "4x")]["loss"]["8x"] == [tuned_8x]
    assert "| yarn | 4x |" in context_extension_256_table(results)
    # a second call finds the record and trains nothing
    again = run_context_extension_256(True, 1, results, runs)
    assert again == [record]


def test_key_retrieval_scores_the_second_copy_of_the_key():
    """An induction oracle (predict what followed the last earlier copy of this token)
    retrieves the key; a model that always says token 0 does not."""
    import numpy as np

    from ropelib.experiments.context_extension import key_retrieval

    vocab = 1000

    class Model(torch.nn.Module):
        def __init__(self, induction: bool):
            super().__init__()
            self.config = type("Config", (), {"vocab_size": vocab})()
            self.induction = induction

        def forward(self, x):
            logits = torch.zeros(*x.shape, vocab)
            if self.induction:
                for b, row in enumerate(x.tolist()):
                    last = {}
                    for t, token in enumerate(row):
                        if token in last and last[token] + 1 < len(row):
                            logits[b, t, row[last[token] + 1]] = 1.0
                        last[token] = t
            return logits, None

    filler = np.full(5000, 999)  # a token the keys almost never use
    oracle = key_retrieval(Model(True), filler, 64, trials=16)
    blind = key_retrieval(Model(False), filler, 64, trials=16)
    assert oracle > 0.9 and blind < 0.05, (oracle, blind)
