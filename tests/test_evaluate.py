"""Tests of the evaluation protocol (chapter *Training*): the same targets at every length."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ropelib.data import iter_tail_batches, tail_window_ends
from ropelib.experiments.records import make_record, write_record
from ropelib.experiments.stats import paired_difference
from ropelib.experiments.tables import results_table
from ropelib.model import GPT
from ropelib.train import PRESETS, TrainConfig, model_config, read_metrics, train
from ropelib.train.evaluate import evaluate_protocol

DATA = Path(__file__).resolve().parents[1] / "data"
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


class Copier(torch.nn.Module):
    """Predicts the next token exactly when the token one period back is in its window."""

    def __init__(self, vocab: int, period: int, max_length: int | None = None):
        super().__init__()
        self.vocab, self.period, self.max_length = vocab, period, max_length
        self.seen: list[torch.Tensor] = []

    def forward(self, x, y=None):
        self.seen.append(x)
        logits = torch.zeros(*x.shape, self.vocab)
        back = x[:, : x.shape[1] + 1 - self.period]
        logits[:, self.period - 1 :].scatter_(-1, back.unsqueeze(-1), 30.0)
        return logits, None


def periodic(vocab: int = 40, period: int = 17, repeats: int = 60) -> np.ndarray:
    return np.tile(np.random.default_rng(1).integers(vocab, size=period), repeats)


def test_the_scored_targets_are_the_same_tokens_at_every_length():
    tokens, T, lengths = periodic(), 16, (1, 2, 4)
    ends = tail_window_ends(tokens, T, max(lengths), max_targets=200)
    tails = [
        torch.cat([y[:, -T:] for _, y in iter_tail_batches(tokens, ends, k * T, 3)])
        for k in lengths
    ]
    for tail in tails[1:]:
        assert torch.equal(tail, tails[0])  # token for token
    assert tails[0].numel() == len(ends) * T >= 200


def test_longer_context_helps_a_copier_and_the_protocol_says_so():
    V, T = 40, 16
    results = evaluate_protocol(Copier(V, T + 1), periodic(V, T + 1), T, (1, 2, 4), None, 4)
    assert math.isclose(results["1x"]["loss"], math.log(V), rel_tol=1e-6)
    assert results["2x"]["loss"] < 1e-9 and results["4x"]["loss"] < 1e-9
    assert len({r["targets"] for r in results.values()}) == 1
    # per position: nothing to copy before position T, everything after
    curve = results["4x"]["positions"]
    assert all(math.isclose(v, math.log(V), rel_tol=1e-5) for v in curve[:T])
    assert max(curve[T:]) < 1e-5


def test_per_position_and_per_window_losses_average_to_the_mean():
    cfg = TrainConfig(**PRESETS["cpu-tiny"])
    torch.manual_seed(0)
    model = GPT(model_config(cfg, vocab_size=50))
    tokens = np.random.default_rng(0).integers(50, size=3000)
    results = evaluate_protocol(model, tokens, 32, (1, 2, 4), 1000, 8)
    for result in results.values():
        tail = result["positions"][-32:]
        assert math.isclose(sum(tail) / 32, result["loss"], abs_tol=1e-5)
        windows = result["windows"]
        assert math.isclose(sum(windows) / len(windows), result["loss"], abs_tol=1e-5)
        assert result["targets"] == len(windows) * 32 >= 1000
        assert len(result["positions"]) == result["context"]
    paired = paired_difference(results["2x"]["windows"], results["1x"]["windows"])
    assert paired["n"] == len(results["1x"]["windows"])  # seeds and schemes pair by window


def test_the_token_count_reaches_the_minimum_or_the_whole_split():
    tokens, T = periodic(repeats=200), 16
    for wanted in (1, 100, 1000, 10**9):
        result = evaluate_protocol(Copier(40, 17), tokens, T, (1, 4), wanted, 8)
        available = ((len(tokens) - 1) // T - 4 + 1) * T
        assert result["1x"]["targets"] == result["4x"]["targets"]
        assert result["1x"]["targets"] >= min(wanted, available)
        assert result["1x"]["targets"] < min(wanted, available) + T


def test_a_model_without_positions_beyond_its_table_gets_none():
    copier = Copier(40, 17, max_length=32)
    results = evaluate_protocol(copier, periodic(), 16, (1, 2, 4), 256, 4)
    assert results["4x"] is None and results["1x"] is not None and results["2x"] is not None
    assert max(x.shape[1] for x in copier.seen) == 32  # never run beyond its table


def test_a_split_too_short_for_the_longest_window_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a split of at least 65 tokens"):
        evaluate_protocol(Copier(40, 17), periodic(repeats=2), 16, (1, 4))


def test_the_trainer_records_the_protocol(tmp_path):
    settings = dict(PRESETS["cpu-tiny"], max_iters=4, eval_interval=2, eval_tokens=640)
    settings.update(data_dir=str(DATA), out_dir=str(tmp_path / "run"), progress=False)
    config = TrainConfig(**settings)
    metrics = train(config)
    protocol = metrics["protocol"]
    assert set(protocol) == {"1x", "2x", "4x"}
    assert all(r["targets"] == 640 for r in protocol.values())
    line = read_metrics(config.out_dir)[-1]
    assert line["kind"] == "protocol" and line["targets"] == 640
    assert line["val_loss"] == {k: r["loss"] for k, r in protocol.items()}
    assert "val_loss" in metrics  # the running evaluation stays under its own key
    again = train(dataclasses.replace(config, resume=True))  # finished: evaluated again
    assert again["protocol"] == protocol
    assert [r["kind"] for r in read_metrics(config.out_dir)].count("protocol") == 1


def _record(label: str, seed: int, loss: float, protocol: dict | None) -> dict:
    config = TrainConfig(**PRESETS["cpu-tiny"], seed=seed)
    final = {"n_params": 1000, "tokens_seen": 5000, "tokens_per_s": 123.0}
    if protocol is not None:
        final["protocol"] = protocol
    origin = {"git": {}, "hardware": {}}
    return make_record(
        experiment="toy", run=f"{label}-seed{seed}", label=label, seed=seed, quick=True,
        config=config, final=final, history=[], wall_time_s=1.0, origin=origin,
        train_loss=loss, val_loss={"1x": loss, "2x": loss - 0.1},
    )  # fmt: skip


def test_results_table_pairs_by_seed_prints_the_scale_and_no_speed(tmp_path):
    (tmp_path / "toy").mkdir()
    for seed, shift in enumerate((0.10, 0.12, 0.11)):
        base = 3.0 + 0.5 * seed  # seeds differ a lot, the pairs little
        protocol = {k: {"loss": base + d} for k, d in (("1x", 0.0), ("2x", 0.2))}
        write_record(tmp_path / "toy" / f"b-{seed}.json", _record("base", seed, base, protocol))
        other = {k: {"loss": v["loss"] + shift} for k, v in protocol.items()}
        write_record(tmp_path / "toy" / f"o-{seed}.json", _record("other", seed, base, other))
    table, summary = results_table("toy", tmp_path, baseline="base")
    assert "tokens_per_s" not in table and "tokens/s" not in table
    assert table.startswith("Scale: 2 layers, width 32, context 32 tokens; 1,000 parameters;")
    assert "5,000 training tokens per run (5.00 per parameter)" in table
    paired = summary["other"]["paired protocol 1x"]
    assert math.isclose(paired["mean"], 0.11) and 0 < paired["low"] < paired["high"] < 0.2
    assert summary["other"]["val_loss 1x"][1] > 0.4  # unpaired: the seeds' spread
    assert "| base |" in table and "baseline" in table and "+0.110 [" in table
    assert summary["other"]["training_tokens"] == 5000 and summary["base"]["context"] == 32
    with pytest.raises(ValueError, match="baseline must be one of"):
        results_table("toy", tmp_path, baseline="missing")


def test_results_table_never_mixes_the_two_evaluations(tmp_path):
    (tmp_path / "toy").mkdir()
    write_record(tmp_path / "toy" / "a.json", _record("a", 0, 3.0, {"1x": {"loss": 2.9}}))
    write_record(tmp_path / "toy" / "b.json", _record("b", 0, 3.0, None))  # an old record
    table, summary = results_table("toy", tmp_path)
    assert "protocol 1x" not in summary["a"] and summary["a"]["val_loss 1x"] == (3.0, 0.0)
