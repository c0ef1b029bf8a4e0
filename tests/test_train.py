"""The trainer (chapter *Training*, appendix *The trainer*): exact resume after SIGKILL,
checkpoint integrity, schedules and weight-decay groups."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ropelib.data import load_text, prepare_dataset
from ropelib.model import GPT
from ropelib.train.checkpoint import load_checkpoint, save_checkpoint
from ropelib.train.config import PRESETS, TrainConfig, config_from_args, model_config
from ropelib.train.loop import evaluate_lengths, micro_batch
from ropelib.train.metrics import read_metrics
from ropelib.train.optim import configure_optimizer, learning_rate

ROOT = Path(__file__).resolve().parent.parent
# Two runs share two cores here; one thread each is several times faster for a model this small.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """A 200 kB slice of Shakespeare and a data directory with its character cache built."""
    tmp = tmp_path_factory.mktemp("corpus")
    path = tmp / "shakespeare-200k.txt"
    path.write_text(load_text("shakespeare")[:200_000])
    prepare_dataset(str(path), tokenizer="char", data_dir=tmp / "data")
    return path, tmp / "data"


def _train_command(corpus: tuple[Path, Path], out_dir: Path, *extra: str) -> list[str]:
    text, data = corpus
    return [sys.executable, "-m", "ropelib", "train", "--preset=cpu-tiny", f"--corpus={text}",
            f"--data_dir={data}", f"--out_dir={out_dir}", "--max_iters=30",
            "--checkpoint_interval=5", "--eval_interval=10", *extra]  # fmt: skip


def _checkpoint_iter(out_dir: Path) -> int:
    try:
        return json.loads((out_dir / "checkpoint.json").read_text())["iter"]
    except (OSError, ValueError, KeyError):
        return 0


def test_resume_after_sigkill_replays_exactly(corpus, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env=ONE_THREAD)
    uninterrupted = subprocess.Popen(_train_command(corpus, whole), **quiet)
    victim = subprocess.Popen(_train_command(corpus, killed), **quiet)
    deadline = time.monotonic() + 120
    while _checkpoint_iter(killed) < 10 and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = _checkpoint_iter(killed)
    assert 10 <= stopped_at < 30
    resumed = subprocess.run(_train_command(corpus, killed, "--resume"), **quiet, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert uninterrupted.wait(timeout=120) == 0, uninterrupted.stderr.read()

    expected, got = read_metrics(whole), read_metrics(killed)
    assert [(r["iter"], r["kind"]) for r in got] == [(r["iter"], r["kind"]) for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        for key in ("loss", "lr", "grad_norm", "val_loss"):
            assert mine.get(key) == theirs.get(key), (mine, theirs)  # exactly, not approximately
    assert (killed / "loss.png").stat().st_size > 0


def test_checkpoint_round_trip_and_corruption(tmp_path):
    config = TrainConfig(**PRESETS["cpu-tiny"])
    torch.manual_seed(0)
    model = GPT(model_config(config, vocab_size=50))
    optimizer = configure_optimizer(model, config)
    x = torch.randint(50, (2, 8))
    model(x, x)[1].backward()
    optimizer.step()
    save_checkpoint(tmp_path, model, optimizer, {"iter": 7, "config": {}})
    tensors, state = load_checkpoint(tmp_path)
    assert state["iter"] == 7
    for name, value in model.state_dict().items():
        assert torch.equal(tensors[f"model.{name}"], value)
    assert any(key.startswith("optimizer.") and key.endswith(".exp_avg") for key in tensors)

    tensor_file = tmp_path / state["tensors"]
    data = bytearray(tensor_file.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last byte
    tensor_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(tmp_path)
    tensor_file.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_checkpoint(tmp_path)
    manifest = tmp_path / "checkpoint.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "empty") is None


def test_checkpoint_leaves_no_temporary_files(tmp_path):
    config = TrainConfig(**PRESETS["cpu-tiny"])
    model = GPT(model_config(config, vocab_size=20))
    optimizer = configure_optimizer(model, config)
    for iteration in (5, 10):
        save_checkpoint(tmp_path, model, optimizer, {"iter": iteration})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-00000010.safetensors",
        "checkpoint.json",
    ]


def test_schedules():
    cosine = TrainConfig(max_iters=1000, warmup_iters=100, lr=1e-3, min_lr=1e-4)
    assert math.isclose(learning_rate(cosine, 0), 1e-3 / 101)
    assert learning_rate(cosine, 100) == 1e-3
    assert math.isclose(learning_rate(cosine, 550), 5.5e-4)
    assert math.isclose(learning_rate(cosine, 1000), 1e-4)
    values = [learning_rate(cosine, t) for t in range(100, 1001)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # never rises
    step = TrainConfig(schedule="step", gamma=0.8, step_size=1000, warmup_iters=0, lr=1e-3)
    assert learning_rate(step, 0) == learning_rate(step, 999) == 1e-3
    assert math.isclose(learning_rate(step, 1000), 8e-4)
    assert math.isclose(learning_rate(step, 2500), 1e-3 * 0.64)
    warm_step = TrainConfig(schedule="step", warmup_iters=9, lr=1e-3)
    assert math.isclose(learning_rate(warm_step, 4), 5e-4)


def test_weight_decay_only_on_matrices():
    config = TrainConfig(**PRESETS["cpu-tiny"], weight_decay=0.1)
    model = GPT(model_config(config, vocab_size=30))
    decay, no_decay = configure_optimizer(model, config).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["params"]
    assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["params"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert any("bias" in names[id(p)] for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_batches_depend_only_on_seed_step_and_index(corpus):
    data = prepare_dataset(str(corpus[0]), tokenizer="char", data_dir=corpus[1])
    config = TrainConfig(**PRESETS["cpu-tiny"])
    first = micro_batch(data.train, config, 3, 1)
    assert torch.equal(first[0], micro_batch(data.train, config, 3, 1)[0])
    assert not torch.equal(first[0], micro_batch(data.train, config, 3, 0)[0])
    other_seed = TrainConfig(**{**PRESETS["cpu-tiny"], "seed": 1})
    assert not torch.equal(first[0], micro_batch(data.train, other_seed, 3, 1)[0])


def test_learned_positions_are_not_evaluated_beyond_their_table(corpus):
    data = prepare_dataset(str(corpus[0]), tokenizer="char", data_dir=corpus[1])
    config = TrainConfig(**{**PRESETS["cpu-tiny"], "pe": "learned"})
    model = GPT(model_config(config, data.vocab_size))
    losses = evaluate_lengths(model, data.val, config.block_size, (1, 2, 4), 4, 1)
    assert losses["2x"] is None and losses["4x"] is None
    assert abs(losses["1x"] - math.log(data.vocab_size)) < 0.5  # near uniform at init


def test_config_survives_a_json_round_trip():
    config = config_from_args(["--preset=crope-paper", "--pe_options={}", "--betas=0.9,0.98"])
    import dataclasses

    again = TrainConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config and again.betas == (0.9, 0.98)
    assert os.fspath(again.out_dir) == "runs/crope-paper"


def test_experiment_runs_cover_configurations_times_seeds():
    from ropelib.experiments.runner import EXPERIMENTS, experiment_runs

    runs = experiment_runs("pe-basics")
    assert EXPERIMENTS["pe-basics"].seeds == 3 and len(runs) == 9
    assert {label for _, label, _ in runs} == {"learned", "rope", "none"}
    assert {(label, config.seed) for _, label, config in runs} == {
        (label, seed) for label in ("learned", "rope", "none") for seed in range(3)
    }
    assert all(config.pe == label for _, label, config in runs)
    assert len(experiment_runs("pe-basics", quick=True)) == 3
    with pytest.raises(ValueError, match="experiment"):
        experiment_runs("no-such-experiment")


def test_run_lock_is_exclusive_and_taken_over_from_dead_processes(tmp_path):
    import subprocess
    import sys

    from ropelib.experiments.runner import _run_lock

    lock = tmp_path / "runs" / "x" / "run.lock"
    with _run_lock(lock) as mine:
        assert mine and lock.read_text() == str(os.getpid())
        with _run_lock(lock) as again:  # held by a live process (this one)
            assert not again
    assert not lock.exists()  # released
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock.write_text(dead.stdout.strip())  # left behind by a process that is gone
    with _run_lock(lock) as mine:
        assert mine
    lock.write_text("garbage")
    with _run_lock(lock) as mine:
        assert mine


def test_two_experiment_workers_share_the_runs(tmp_path, monkeypatch):
    """A run claimed by another live worker is skipped, not trained twice."""
    from ropelib.experiments import runner as train_module

    calls = []
    monkeypatch.setattr(train_module, "_train_and_record", lambda *a: calls.append(a[1]))
    runs = tmp_path / "runs"
    (runs / "pe-basics").mkdir(parents=True)
    (runs / "pe-basics" / "rope-seed0.lock").write_text(str(os.getppid()))  # a live process
    train_module.run_experiment("pe-basics", quick=True, seeds=1, results_dir=tmp_path / "r",
                                runs_dir=runs)  # fmt: skip
    assert "rope-seed0" not in calls and calls  # the others were taken


def test_load_model_without_a_checkpoint_is_a_clear_error(tmp_path):
    from ropelib.train.checkpoint import load_model

    with pytest.raises(ValueError, match="no checkpoint"):
        load_model(tmp_path)


def test_difference_is_the_mean_gap_and_its_standard_error():
    from ropelib.experiments.stats import difference

    summary = {
        "a": {"seeds": 4, "val_loss 1x": (5.0, 0.2)},
        "b": {"seeds": 1, "val_loss 1x": (4.5, 0.0)},
    }
    delta, se = difference(summary, "a", "b")
    assert delta == pytest.approx(0.5) and se == pytest.approx(0.1)
