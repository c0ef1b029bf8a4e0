"""The trainer (chapter *Training*, appendix *The trainer*) and the experiment runner (appendix
*The experiment runner*): exact resume after SIGKILL, checkpoint integrity, schedules,
weight-decay groups, configuration errors, locks, records and statistics."""

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


def test_run_lock_is_exclusive_released_and_never_deleted(tmp_path):
    from ropelib.experiments.runner import run_lock

    lock = tmp_path / "runs" / "x" / "run.lock"
    with run_lock(lock) as mine:
        assert mine and lock.read_text() == f"{os.getpid()}\n"
        with run_lock(lock) as again:  # another open file of the same lock: refused
            assert not again
    assert lock.exists()  # released, but the file stays (others may have it open)
    lock.write_text("12345678\n")  # stale contents are never read
    with run_lock(lock) as mine:
        assert mine


def test_a_lock_dies_with_its_holder(tmp_path):
    """SIGKILL releases the lock: the kernel closes the holder's file."""
    lock = tmp_path / "run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ropelib.files import exclusive_lock\n"
         "with exclusive_lock(sys.argv[1]) as mine:\n    print(mine, flush=True)\n"
         "    time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "True\n"
        from ropelib.files import exclusive_lock

        with exclusive_lock(lock) as mine:
            assert not mine  # held by a live process
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with exclusive_lock(lock) as mine:
        assert mine


def test_two_experiment_workers_share_the_runs(tmp_path, monkeypatch):
    """A run claimed by another live worker is skipped, not trained twice."""
    from ropelib.experiments import runner
    from ropelib.files import exclusive_lock

    calls = []
    monkeypatch.setattr(runner, "_train_and_record", lambda *a: calls.append(a[1]))
    runs = tmp_path / "runs"
    with exclusive_lock(runs / "pe-basics" / "rope-seed0.lock") as mine:  # another worker
        assert mine
        runner.run_experiment("pe-basics", quick=True, seeds=1, results_dir=tmp_path / "r",
                              runs_dir=runs)  # fmt: skip
    assert "rope-seed0" not in calls and sorted(calls) == ["learned-seed0", "none-seed0"]


def test_parameter_groups_exempt_what_modules_name():
    from ropelib.train.optim import parameter_groups

    class Positions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(16, 8))  # learned, 2-D

        def no_weight_decay(self):
            return {"table"}

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.positions = Positions()
            self.proj = torch.nn.Linear(8, 8)
            self.norm = torch.nn.LayerNorm(8)

    model = Model()
    decay, keep = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(model.proj.weight)]
    kept = {id(p) for p in keep["params"]}
    assert id(model.positions.table) in kept and id(model.proj.bias) in kept
    assert len(kept) == 4  # table, bias, and the LayerNorm's two vectors
    # names are relative to the module that lists them; a parent may list a child's too
    model.no_weight_decay = lambda: {"positions.table", "proj.weight"}
    decay, keep = parameter_groups(model, 0.1)
    assert decay["params"] == [] and len(keep["params"]) == 5
    model.no_weight_decay = lambda: {"no_such"}
    with pytest.raises(ValueError, match="no_such"):
        parameter_groups(model, 0.1)


def test_configuration_errors_are_config_errors():
    from ropelib.model import ConfigError

    for bad in (dict(lr=0.0), dict(pe="no-such"), dict(betas=(0.9,)), dict(schedule="x")):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match="nlayer"):
        config_from_args(["--nlayer=3"])
    with pytest.raises(ConfigError, match="pe_options"):
        TrainConfig(pe="rope", pe_options={"bogus": 1})


def test_checking_a_config_leaves_the_random_state_alone():
    state = torch.get_rng_state()
    TrainConfig(**PRESETS["cpu-tiny"])
    assert torch.equal(state, torch.get_rng_state())


def test_one_trainer_per_out_dir_and_no_silent_overwrite(corpus, tmp_path):
    from ropelib.files import exclusive_lock
    from ropelib.model import ConfigError
    from ropelib.train.loop import train

    text, data = corpus
    where = {"corpus": str(text), "data_dir": str(data), "out_dir": str(tmp_path / "run")}
    config = TrainConfig(**{**PRESETS["cpu-tiny"], **where, "max_iters": 2, "progress": False})
    with exclusive_lock(tmp_path / "run" / ".lock") as mine:
        assert mine
        with pytest.raises(ConfigError, match="another live trainer") as refused:
            train(config)
        assert "\n" not in str(refused.value)
    assert train(config)["iters"] == 2  # the holder is gone: the directory is free
    with pytest.raises(ConfigError) as refused:
        train(config)  # a fresh run into a finished one
    message = str(refused.value)
    assert "--resume=true" in message and "--overwrite=true" in message and "\n" not in message
    import dataclasses

    again = train(dataclasses.replace(config, overwrite=True))
    assert again["iters"] == 2 and len([r for r in read_metrics(config.out_dir)
                                        if r["kind"] == "train"]) == 2  # fmt: skip
    log = read_metrics(config.out_dir)
    resumed = train(dataclasses.replace(config, resume=True))  # finished: nothing to do
    assert resumed["iters"] == 2 and read_metrics(config.out_dir) == log


def test_load_model_without_a_checkpoint_is_a_clear_error(tmp_path):
    from ropelib.model import ConfigError
    from ropelib.train.checkpoint import load_model

    with pytest.raises(ConfigError, match="no checkpoint"):
        load_model(tmp_path)


def test_difference_is_the_mean_gap_and_its_standard_error():
    from ropelib.experiments.stats import difference

    summary = {
        "a": {"seeds": 4, "val_loss 1x": (5.0, 0.2)},
        "b": {"seeds": 1, "val_loss 1x": (4.5, 0.0)},
    }
    delta, se = difference(summary, "a", "b")
    assert delta == pytest.approx(0.5) and se == pytest.approx(0.1)


def test_paired_difference_against_a_hand_computation(monkeypatch):
    from ropelib.experiments import stats

    # differences 0.5, 1.0, 1.5: mean 1, sd 0.5, sem 0.5 / sqrt(3), t_2(0.975) = 4.302653
    expected_half = 4.302653 * 0.5 / math.sqrt(3)
    result = stats.paired_difference([1.0, 2.0, 4.0], [0.5, 1.0, 2.5])
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(1.0)
    assert result["sem"] == pytest.approx(0.288675, abs=1e-6)
    assert result["low"] == pytest.approx(1.0 - expected_half, abs=1e-5)
    assert result["high"] == pytest.approx(1.0 + expected_half, abs=1e-5)
    # without scipy: the built-in table gives the same interval to its four decimals
    monkeypatch.setattr(stats, "_t_quantile", stats._t_quantile_table)
    table = stats.paired_difference({0: 1.0, 1: 2.0, 2: 4.0}, {2: 2.5, 1: 1.0, 0: 0.5})
    assert table["high"] == pytest.approx(result["high"], abs=1e-4)
    assert stats._t_quantile_table(0.95, 45) == pytest.approx(2.0141, abs=1e-3)
    for a, b in (([1.0], [2.0]), ([1.0, 2.0], [1.0]), ({0: 1.0, 1: 2.0}, {0: 1.0, 2: 2.0})):
        with pytest.raises(ValueError):
            stats.paired_difference(a, b)
    with pytest.raises(ValueError, match="scipy"):
        stats._t_quantile_table(0.9, 3)
    assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    with pytest.raises(ValueError):
        stats.mean_std([])


def test_records_have_one_schema_and_are_written_once(tmp_path):
    from ropelib.experiments.records import RECORD_KEYS, load_results, make_record, write_record

    config = TrainConfig(**PRESETS["cpu-tiny"])
    record = make_record(experiment="x", run="a-seed0", label="a", seed=0, quick=True,
                         config=config, final={"n_params": 1}, history=[], wall_time_s=1.0,
                         origin={"git": {"commit": None, "dirty": None}, "hardware": {}},
                         val_loss={"1x": 2.0})  # fmt: skip
    assert set(RECORD_KEYS) <= set(record) and record["config"]["n_embd"] == 32
    path = tmp_path / "x" / "a-seed0.json"
    path.parent.mkdir()
    write_record(path, record)
    with pytest.raises(FileExistsError):
        write_record(path, record)
    with pytest.raises(ValueError, match="missing"):
        write_record(tmp_path / "x" / "b.json", {"run": "b"})
    with pytest.raises(ValueError, match="keys"):  # a measured value may not shadow the schema
        make_record(experiment="x", run="r", label="a", seed=0, quick=True, config={},
                    final={}, history=[], wall_time_s=None, origin=record, git=1)  # fmt: skip
    assert [r["run"] for r in load_results("x", tmp_path)] == ["a-seed0"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["a-seed0.json"]


def test_old_records_translate_block_size_to_block_dim(tmp_path):
    from ropelib.experiments.records import load_results

    (tmp_path / "old").mkdir()
    config = {"pe": "hdd", "block_size": 64, "pe_options": {"block_size": 4}}
    record = {"run": "r", "config": config}
    (tmp_path / "old" / "r.json").write_text(json.dumps(record))
    (loaded,) = load_results("old", tmp_path)
    assert loaded["config"]["pe_options"] == {"block_dim": 4}
    assert loaded["config"]["block_size"] == 64  # the context keeps its name


# A fine-tune: `init_from` starts from a trained run's weights, `rope_scaling` gives every RoPE
# layer a rope type from its first step and is restored with the checkpoint.
def _tiny(fixture, out_dir: Path, **overrides) -> TrainConfig:
    text, data = fixture
    fields = dict(PRESETS["cpu-tiny"], corpus=str(text), data_dir=str(data), out_dir=str(out_dir),
                  max_iters=2, eval_interval=2, checkpoint_interval=2, eval_tokens=256,
                  progress=False)  # fmt: skip
    return TrainConfig(**{**fields, **overrides})


def test_init_from_starts_from_the_trained_weights_and_rope_scaling_is_restored(corpus, tmp_path):
    from ropelib.scaling import scaled_frequencies
    from ropelib.train import train
    from ropelib.train.checkpoint import load_model

    train(_tiny(corpus, tmp_path / "base"))
    base, _ = load_model(tmp_path / "base")
    yarn = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32}
    # lr 0 for every step: the fine-tune's weights are exactly the ones it started from
    tune = _tiny(corpus, tmp_path / "tune", init_from=str(tmp_path / "base"), block_size=64,
                 rope_scaling=yarn, lr=1e-12, min_lr=0.0, weight_decay=0.0,
                 warmup_iters=0)  # fmt: skip
    train(tune)
    tuned, config = load_model(tmp_path / "tune")
    assert config.rope_scaling == yarn and config.init_from == str(tmp_path / "base")
    for (name, a), b in zip(base.state_dict().items(), tuned.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0, msg=name)
    frequencies, factor = scaled_frequencies("yarn", 16, seq_len=64, factor=2.0,
                                             original_max_position_embeddings=32)  # fmt: skip
    for block in tuned.transformer.h:
        assert torch.equal(block.attn.pe.rope.frequencies, frequencies)
        assert block.attn.pe.logit_scale == pytest.approx(factor**2)
    # the base model is left as it was, and a fresh model of the same shape differs from it
    again, _ = load_model(tmp_path / "base")
    pairs = zip(again.state_dict().values(), base.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    fresh = GPT(model_config(tune, base.config.vocab_size))
    assert not torch.equal(fresh.lm_head.weight, base.lm_head.weight)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(init_from="missing"), "init_from: no checkpoint in"),
        (dict(init_from="base", n_embd=64), "init_from: the run in"),
        (dict(init_from="base", corpus="bible"), "another tokenizer"),
        (dict(init_from="tune"), "init_from must be another run's out_dir"),
        (dict(rope_scaling={"rope_type": "yarn", "factor": 2.0}),
         "original_max_position_embeddings"),
        (dict(rope_scaling={"factor": 2.0}), "rope_type"),
        (dict(rope_scaling={"rope_type": "linear", "factor": 2.0}, pe="learned"),
         "no RoPE frequencies"),
    ],
)
def test_fine_tune_refusals_are_one_line_config_errors(corpus, tmp_path, overrides, message):
    from ropelib.model import ConfigError
    from ropelib.train import train

    train(_tiny(corpus, tmp_path / "base", max_iters=1, eval_interval=1, checkpoint_interval=1))
    if "init_from" in overrides:
        overrides = {**overrides, "init_from": str(tmp_path / overrides["init_from"])}
    if overrides.get("corpus") == "bible":
        overrides["data_dir"] = str(tmp_path / "bible-data")
        overrides["tokenizer"] = "char"
        overrides["corpus"] = str(_other_corpus(tmp_path))
    with pytest.raises(ConfigError, match=message) as raised:
        train(_tiny(corpus, tmp_path / "tune", **overrides))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "tune" / "checkpoint.json").exists()


def _other_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "other.txt"
    path.write_text("".join(chr(0x41 + i % 58) for i in range(50_000)))  # another alphabet
    return path


def test_train_cli_takes_rope_scaling_as_json(corpus, tmp_path):
    ok = subprocess.run(
        _train_command(corpus, tmp_path / "run", "--max_iters=2", "--eval_interval=2",
                       '--rope_scaling={"rope_type": "linear", "factor": 2.0}'),
        capture_output=True, text=True, cwd=tmp_path, env=ONE_THREAD,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    saved = json.loads((tmp_path / "run" / "checkpoint.json").read_text())["config"]
    assert saved["rope_scaling"] == {"rope_type": "linear", "factor": 2.0}
    bad = subprocess.run(
        _train_command(corpus, tmp_path / "bad", '--rope_scaling={"rope_type": "nope"}'),
        capture_output=True, text=True, cwd=tmp_path, env=ONE_THREAD,
    )  # fmt: skip
    assert bad.returncode == 2 and "rope_scaling" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_a_half_split_comrope_trains_as_the_interleaved_one(corpus, tmp_path):
    """pe_options={"interleaved": false} reorders channels only: the same losses, step by step."""
    metrics = {}
    for interleaved in ("true", "false"):
        out_dir = tmp_path / interleaved
        done = subprocess.run(
            _train_command(corpus, out_dir, "--max_iters=6", "--eval_interval=3", "--pe=comrope-ap",
                           f'--pe_options={{"block_dim": 8, "interleaved": {interleaved}}}'),
            capture_output=True, text=True, cwd=tmp_path, env=ONE_THREAD,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        saved = json.loads((out_dir / "checkpoint.json").read_text())["config"]
        assert saved["pe_options"] == {"block_dim": 8, "interleaved": interleaved == "true"}
        metrics[interleaved] = read_metrics(out_dir)
    first, second = metrics["true"], metrics["false"]
    assert len(first) >= 6 and [r["iter"] for r in first] == [r["iter"] for r in second]
    for mine, theirs in zip(first, second, strict=True):
        assert mine["kind"] == theirs["kind"]
        pairs = [(mine["loss"], theirs["loss"])] if "loss" in mine else []
        pairs += [(mine["val_loss"][n], theirs["val_loss"][n]) for n in mine.get("val_loss", {})]
        assert pairs, mine
        for a, b in pairs:
            assert abs(a - b) < 1e-4, (mine, theirs)
