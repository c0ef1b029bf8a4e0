"""Context extension (PI, NTK-aware, YaRN), its model layer, and the inversion Monte Carlo.

Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import math

import pytest
import torch

import ropelib.schemes  # noqa: F401  (registers the GPT adapters)
from ropelib.context import extend_context, model_inversion_probabilities
from ropelib.long_context import inversion_probabilities, rotary_scores
from ropelib.model import GPT, GPTConfig
from ropelib.rope import RotaryEmbedding, rope_frequencies
from ropelib.scaling import (
    EXTENSIONS,
    interpolated_frequencies,
    ntk_frequencies,
    scaled_frequencies,
    yarn_frequencies,
    yarn_logit_scale,
)


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
        assert extend_context(model, "pi", 4.0) == 2
        layer = model.transformer.h[0].attn.pe
        torch.testing.assert_close(layer.rope.frequencies, rope_frequencies(16) / 4)
        assert not torch.allclose(model(idx)[0], before)
        extend_context(model, "yarn", 4.0)
        assert layer.logit_scale == pytest.approx((0.1 * math.log(4) + 1) ** 2)
        extend_context(model, "none")
        assert layer.logit_scale == 1.0
        torch.testing.assert_close(model(idx)[0], before)


def test_extend_context_leaves_non_rotary_models_alone():
    model = small("learned")
    assert extend_context(model, "ntk", 2.0) == 0


def test_rove_values_follow_the_new_frequencies():
    """After extension, RoVE's output still depends on relative positions only."""
    model = small("rove")
    extend_context(model, "ntk", 4.0)
    idx = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_features(idx, start=500), model.forward_features(idx), atol=1e-4,
            rtol=1e-4,
        )  # fmt: skip


def test_ntk_keeps_the_fastest_and_interpolates_the_slowest_pair():
    ntk, theta = ntk_frequencies(64, 8.0), rope_frequencies(64)
    assert ntk[0] == pytest.approx(theta[0].item())
    assert ntk[-1].item() == pytest.approx(theta[-1].item() / 8, rel=1e-12)


def test_yarn_lies_between_pi_and_the_original_and_ramps_in_the_turns():
    yarn, theta = yarn_frequencies(64, 4.0, 128), rope_frequencies(64)
    assert torch.all(yarn <= theta + 1e-15)
    assert torch.all(yarn >= interpolated_frequencies(64, 4.0) - 1e-15)
    turns = 128 * theta / (2 * math.pi)
    gamma = (turns - 1) / 31
    middle = (turns > 1) & (turns < 32)
    assert middle.sum() >= 3
    blend = (yarn[middle] / theta[middle] - 1 / 4) / (1 - 1 / 4)  # recovers γ(r_j)
    torch.testing.assert_close(blend, gamma[middle])


def test_yarn_differs_from_the_released_code_s_ramp_in_the_pair_index():
    """The released code ramps linearly in j between floor/ceil correction dims."""
    D, L, s, base = 128, 2048, 10, 10000.0

    def dim(turns):
        return D * math.log(L / (turns * 2 * math.pi)) / (2 * math.log(base))

    low, high = math.floor(dim(32)), math.ceil(dim(1))
    keep = 1 - ((torch.arange(D // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    theta = rope_frequencies(D, base)
    released = theta / s * (1 - keep) + theta * keep
    ratio = released / yarn_frequencies(D, s, L, base)
    torch.testing.assert_close(ratio[: low + 1], torch.ones(low + 1, dtype=torch.float64))
    assert ratio.max() > 2.5


def test_scaled_frequencies_names_every_method():
    theta = rope_frequencies(32)
    assert torch.equal(scaled_frequencies("none", 32)[0], theta)
    torch.testing.assert_close(scaled_frequencies("pi", 32, 2.0)[0], theta / 2)
    torch.testing.assert_close(scaled_frequencies("ntk", 32, 2.0)[0], ntk_frequencies(32, 2.0))
    frequencies, scale = scaled_frequencies("yarn", 32, 2.0, original_context=64)
    torch.testing.assert_close(frequencies, yarn_frequencies(32, 2.0, 64))
    assert scale == yarn_logit_scale(2.0)
    assert set(EXTENSIONS) == {"none", "pi", "ntk", "yarn"}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: extend_context(small("rope"), "linear", 2.0), "method"),
        (lambda: scaled_frequencies("linear", 32), "method"),
        (lambda: scaled_frequencies("yarn", 32, 2.0), "original_context"),
        (lambda: interpolated_frequencies(64, 0.5), "factor"),
        (lambda: ntk_frequencies(64, float("nan")), "factor"),
        (lambda: yarn_logit_scale(True), "factor"),
        (lambda: yarn_frequencies(64, 2.0, 0), "original_context"),
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
        assert set(record["loss"]) == {"trained", *EXTENSIONS}
        for method in EXTENSIONS:
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
    assert summary["rope"]["pi"]["8x"][0] == rope["loss"]["pi"]["8x"]
    assert "| rope | yarn |" in context_extension_table(results)


def test_the_stored_context_extension_results_still_read():
    from pathlib import Path

    from ropelib.experiments.context_extension import context_extension_summary

    stored = Path(__file__).resolve().parent.parent / "results" / "context-extension"
    summary = context_extension_summary(stored)
    assert set(summary) == {"rope", "rove", "xpos", "rove-xpos"}
    assert all(cell[2] == 3 for cell in summary["rope"]["yarn"].values())
