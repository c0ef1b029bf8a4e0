"""The diagnostics experiment (chapter *Diagnostics*): its run list, runner, records, table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ropelib.experiments.diagnostics import (
    QUICK_SCHEMES,
    TASKS,
    diagnostic_config,
    diagnostic_runs,
    diagnostics_table,
    plot_task,
    run_diagnostics,
    train_on_task,
)
from ropelib.experiments.records import RECORD_KEYS, load_results
from ropelib.experiments.runner import EXPERIMENTS, run_lock
from ropelib.model import POSITION_SCHEMES

ROOT = Path(__file__).resolve().parent.parent


def test_every_registered_scheme_task_and_seed_is_run_once():
    runs = diagnostic_runs(seeds=3)
    assert "diagnostics" in EXPERIMENTS and EXPERIMENTS["diagnostics"].seeds == 3
    assert len(runs) == len({r[0] for r in runs}) == len(POSITION_SCHEMES) * 4 * 3
    assert {(t, pe, s) for _, _, t, pe, s in runs} == {
        (t, pe, s) for t in TASKS for pe in POSITION_SCHEMES for s in range(3)
    }
    assert runs == diagnostic_runs(seeds=3)  # deterministic given the registry
    seeds = [s for *_, s in runs]
    assert seeds == sorted(seeds)  # seed by seed: a partial run covers every scheme
    quick = diagnostic_runs(quick=True, seeds=1)
    assert {pe for _, _, _, pe, _ in quick} == set(QUICK_SCHEMES) & set(POSITION_SCHEMES)
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        diagnostic_runs(seeds=0)


def test_learned_table_covers_the_longest_test():
    for name, task in TASKS.items():
        config = diagnostic_config(name, "learned", 0, quick=True)
        model, history, tokens = train_on_task(config)
        assert model.max_length == task.tokens(max(task.test_sizes))
        assert tokens >= config.steps * config.batch_size * task.tokens(task.train_sizes[0])
        assert history[-1]["iter"] == config.steps - 1


def test_overrides_change_the_scale_and_refuse_unknown_fields(tmp_path):
    config = diagnostic_config("copy", "rope", 1, quick=True, steps=2, n_embd=32)
    assert (config.steps, config.n_embd, config.n_layer, config.seed) == (2, 32, 1, 1)
    with pytest.raises(ValueError, match="overrides must be among"):
        diagnostic_config("copy", "rope", 0, quick=True, width=3)
    results = tmp_path / "diagnostics"
    run_diagnostics(True, 1, results, tmp_path / "runs", log=False, overrides={"steps": 2})
    records = load_results("diagnostics", results)
    assert records and all(r["config"]["steps"] == 2 for r in records)
    assert all(r["history"][-1]["iter"] == 1 for r in records)


def test_training_lowers_the_loss():
    config = diagnostic_config("flip-flop", "rope", 0, quick=True)
    config.steps, config.n_embd, config.batch_size = 80, 32, 16
    _, history, _ = train_on_task(config)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]


def test_quick_experiment_records_skip_and_table(tmp_path):
    results, runs_dir = tmp_path / "diagnostics", tmp_path / "runs"
    run_diagnostics(True, 1, results, runs_dir)
    records = load_results("diagnostics", results)
    assert len(records) == len(diagnostic_runs(True, 1))
    for record in records:
        assert set(RECORD_KEYS) <= set(record) and record["quick"] is True
        assert record["experiment"] == "diagnostics" and record["finished"]
        task = TASKS[record["task"]]
        assert record["config"]["pe"] == record["scheme"]
        assert set(record["final"]["accuracy"]) == {str(s) for s in task.test_sizes}
        assert all(0 <= a <= 1 for a in record["final"]["accuracy"].values())
        assert set(record["final"]["variants"]) == set(task.variants)
    stamps = {p: p.stat().st_mtime_ns for p in results.iterdir()}
    run_diagnostics(True, 1, results, runs_dir)  # everything is done: nothing changes
    assert {p: p.stat().st_mtime_ns for p in results.iterdir()} == stamps
    table = diagnostics_table(results)
    lines = table.splitlines()
    assert len(lines) == 2 + len(records) and all(line.count("|") == 8 for line in lines)
    assert " ± " not in table  # one seed: no spread to show
    figure = plot_task(records, "copy")
    axes = figure.axes[0]
    assert axes.get_xlabel() and axes.get_ylabel() and axes.get_title()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == sorted(QUICK_SCHEMES)
    assert diagnostics_table(tmp_path / "empty").startswith("no diagnostics results")


def test_a_locked_run_is_left_to_its_owner(tmp_path):
    results, runs_dir = tmp_path / "diagnostics", tmp_path / "runs"
    taken = diagnostic_runs(True, 1)[0][0]
    with run_lock(runs_dir / "diagnostics" / f"{taken}.lock") as mine:
        assert mine
        run_diagnostics(True, 1, results, runs_dir)
    names = {p.stem for p in results.glob("*.json")}
    assert taken not in names and len(names) == len(diagnostic_runs(True, 1)) - 1
    run_diagnostics(True, 1, results, runs_dir)  # released: now it is trained
    assert taken in {p.stem for p in results.glob("*.json")}


def test_two_workers_train_each_run_once(tmp_path):
    results, runs_dir = tmp_path / "diagnostics", tmp_path / "runs"
    code = (
        "from ropelib.experiments.diagnostics import run_diagnostics; "
        f"run_diagnostics(True, 2, {str(results)!r}, {str(runs_dir)!r})"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    trained = [line.split(":")[0] for out in outputs for line in out.splitlines()]
    expected = [f"diagnostics/{run}" for run, *_ in diagnostic_runs(True, 2)]
    assert sorted(trained) == sorted(expected)  # every run once, by one worker
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert sorted(r["run"] for r in records) == sorted(r for r, *_ in diagnostic_runs(True, 2))
    assert not list(results.glob("*.tmp*"))
    assert diagnostics_table(results).count(" ± ") == 4 * len(records) // 2  # two seeds
