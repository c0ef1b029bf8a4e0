"""The results chapter's helpers (`ropelib.experiments.summary`) on records written here."""

from __future__ import annotations

import json

import pytest

from ropelib.experiments.diagnostics import TASKS
from ropelib.experiments.records import make_record, write_record
from ropelib.experiments.summary import (
    baseline_label,
    diagnostics_summary,
    experiment_rows,
    gpu_reports,
    gpu_table,
    scale_table,
    scheme_table,
)

ORIGIN = {
    "git": {"commit": None, "dirty": None},
    "hardware": {"cpu": "Test CPU", "torch_threads": 2, "gpu": None},
}
LOSSES = {  # label: per seed, {length: loss}
    "rope": [{"1x": 4.0, "2x": 4.1}, {"1x": 4.2, "2x": 4.3}, {"1x": 4.1, "2x": 4.2}],
    "learned": [{"1x": 4.5}, {"1x": 4.6}, {"1x": 4.8}],  # no positions past its table
}


def write_runs(directory, losses=LOSSES, protocol=False, name="toy"):
    directory.mkdir(parents=True, exist_ok=True)
    for label, runs in losses.items():
        for seed, val_loss in enumerate(runs):
            final = {"n_params": 1000 if label == "rope" else 1200, "tokens_seen": 500}
            if protocol:
                final["protocol"] = {k: {"loss": v - 1} for k, v in val_loss.items()}
            record = make_record(
                experiment=name, run=f"{label}-seed{seed}", label=label, seed=seed,
                quick=False, config={"block_size": 64}, final=final, history=[],
                wall_time_s=60.0, origin=ORIGIN, val_loss=val_loss,
            )  # fmt: skip
            write_record(directory / f"{label}-seed{seed}.json", record)
    return directory


def test_the_baseline_is_the_rope_label_of_the_same_corpus():
    labels = ["rope bible", "crope bible", "rope shakespeare", "comrope-ap b=2", "rope"]
    assert baseline_label("crope bible", labels) == "rope bible"
    assert baseline_label("learned shakespeare", labels) == "rope shakespeare"
    assert baseline_label("comrope-ap b=2", labels) == "rope"  # no "rope b=2": plain rope
    assert baseline_label("xpos", ["xpos", "hdd b=2"]) is None


def test_rows_pair_each_label_with_rope_seed_by_seed(tmp_path):
    rows = experiment_rows("toy", write_runs(tmp_path / "toy"))
    by_label = {row["label"]: row for row in rows}
    assert set(by_label) == {"rope", "learned"}
    learned, rope = by_label["learned"], by_label["rope"]
    assert learned["baseline"] == "rope" and rope["paired"] == {}
    d = learned["paired"]["1x"]  # differences 0.5, 0.4, 0.7 per seed
    assert d["n"] == 3 and d["mean"] == pytest.approx(1.6 / 3)
    assert d["low"] < 0.4 < 0.7 < d["high"]  # a t-interval over three seeds is wide
    assert "2x" not in learned["paired"] and learned["losses"]["1x"][2] == 4.8
    assert learned["parameters"] == 1200 and learned["training_tokens"] == 500
    assert learned["seeds"] == [0, 1, 2] and learned["context"] == 64
    assert learned["hardware"] == ["Test CPU, 2 torch threads"] and not learned["protocol"]


def test_rows_read_the_protocol_when_every_record_has_it(tmp_path):
    rows = experiment_rows("toy", write_runs(tmp_path / "toy", protocol=True))
    rope = next(row for row in rows if row["label"] == "rope")
    assert rope["protocol"] and rope["losses"]["1x"] == pytest.approx({0: 3.0, 1: 3.2, 2: 3.1})


def test_a_label_with_one_seed_in_common_has_no_interval(tmp_path):
    losses = {"rope": LOSSES["rope"][:1], "learned": LOSSES["learned"][:1]}
    rows = experiment_rows("toy", write_runs(tmp_path / "toy", losses))
    assert all(row["paired"] == {} for row in rows)
    assert "| learned | toy | 0.00M | 4.50±0.00 | — | — |" in scheme_table(rows)


def test_the_table_marks_the_baseline_and_what_was_not_measured(tmp_path):
    rows = experiment_rows("toy", write_runs(tmp_path / "toy"))
    lines = scheme_table(rows).splitlines()
    assert lines[0] == "| scheme | experiment | params | 1x | Δ vs RoPE, 95% | 2x |"
    learned = next(line for line in lines if line.startswith("| learned"))
    rope = next(line for line in lines if line.startswith("| rope"))
    d = next(row for row in rows if row["label"] == "learned")["paired"]["1x"]
    assert f"{d['mean']:+.3f}±{d['high'] - d['mean']:.3f}" in learned
    assert learned.endswith("| — |") and "| baseline | 4.20 |" in rope
    assert all(len(line) <= 90 for line in lines)


def test_a_corpus_goes_with_the_experiment_and_a_block_size_with_the_scheme(tmp_path):
    losses = {"rope bible": LOSSES["rope"], "crope bible": LOSSES["rope"],
              "comrope-ap b=2": LOSSES["rope"], "rope": LOSSES["rope"]}  # fmt: skip
    rows = experiment_rows("toy", write_runs(tmp_path / "toy", losses))
    text = scheme_table(rows)
    assert "| crope | toy, bible |" in text and "| comrope-ap b=2 | toy |" in text
    crope = next(row for row in rows if row["label"] == "crope bible")
    assert crope["baseline"] == "rope bible" and crope["paired"]["1x"]["mean"] == 0


def test_the_scale_table_gives_ranges_over_an_experiments_configurations(tmp_path):
    rows = experiment_rows("toy", write_runs(tmp_path / "toy"))
    line = scale_table(rows).splitlines()[2]
    assert line == "| toy | 0.00M | 0.00M | 0.42–0.50 | 64 | 3 | 1.0 min |"
    for row in rows:  # a record without its wall time: the column says so
        row["wall_time_s"] = [None] * len(row["wall_time_s"])
    assert scale_table(rows).splitlines()[2].endswith("| 64 | 3 | — |")


def test_gpu_reports_read_the_checks_files_and_refuse_other_json(tmp_path):
    assert gpu_reports(tmp_path) == []
    run = tmp_path / "2026-12-01"
    run.mkdir()
    report = {"device": "cuda", "device_name": "NVIDIA H200", "torch": "2.9.0",
              "date": "2026-12-01T08:00:00+00:00", "part": "cuda-tests"}  # fmt: skip
    (run / "cuda-tests.json").write_text(json.dumps(report))
    (reports,) = gpu_reports(tmp_path)
    assert reports["path"] == "2026-12-01/cuda-tests.json"
    row = gpu_table([reports]).splitlines()[2]
    assert row.startswith("| 2026-12-01/cuda-tests.json | cuda-tests | NVIDIA H200 | 2.9.0 |")
    (run / "other.json").write_text(json.dumps({"device": "cuda"}))
    with pytest.raises(ValueError, match="lacks the GPU check's keys"):
        gpu_reports(tmp_path)


def test_diagnostics_summary_gives_accuracy_at_1x_and_8x_over_stored_seeds():
    task = TASKS["copy"]
    longest = task.train_sizes[1]
    records = [
        {"task": "copy", "scheme": "rope", "seed": seed,
         "final": {"accuracy": {str(longest): top, str(8 * longest): low}}}
        for seed, (top, low) in enumerate(((0.9, 0.1), (0.7, 0.3)))
    ]  # fmt: skip
    lines = diagnostics_summary(records, {"copy": task}).splitlines()
    assert lines[0] == "| scheme | seeds | copy 1×/8× |"
    assert lines[2] == "| rope | 2 | 80/20 |"
    lines = diagnostics_summary(records[:1], TASKS).splitlines()  # the other tasks: none
    assert lines[2] == "| rope | 0–1 | 90/10 | —/— | —/— | —/— |"


def _protocol_runs(directory, name, label, per_seed, seeds=None):
    (directory / name).mkdir(parents=True, exist_ok=True)
    for seed, losses in enumerate(per_seed):
        if seeds is not None and seed not in seeds:
            continue
        protocol = {k: {"loss": v, "targets": 64} for k, v in losses.items()}
        final = {"n_params": 900 if label != "rope" else 1000, "tokens_seen": 500,
                 "protocol": protocol}  # fmt: skip
        record = make_record(
            experiment=name, run=f"{label}-seed{seed}", label=label, seed=seed,
            quick=False, config={"block_size": 64}, final=final, history=[],
            wall_time_s=60.0, origin=ORIGIN, val_loss={},
        )  # fmt: skip
        write_record(directory / name / f"{label}-seed{seed}.json", record)


def test_against_rope_pairs_a_variant_with_pe_basics_128s_rope_by_seed(tmp_path):
    from ropelib.experiments.basics import against_rope, against_rope_table

    rope = [{"1x": 3.0, "2x": 3.4}, {"1x": 3.1, "2x": 3.6}, {"1x": 3.2, "2x": 3.5}]
    mine = [{"1x": 3.1, "2x": 3.2}, {"1x": 3.1, "2x": 3.3}, {"1x": 3.3, "2x": 3.3}]
    _protocol_runs(tmp_path, "pe-basics-128", "rope", rope)
    _protocol_runs(tmp_path, "schemes-128", "crope", mine[:2])
    assert against_rope("crope", tmp_path) is None  # two seeds of three: not yet
    _protocol_runs(tmp_path, "schemes-128", "crope", mine, seeds=[2])
    c = against_rope("crope", tmp_path)
    assert c["seeds"] == [0, 1, 2] and (c["parameters"], c["rope_parameters"]) == (900, 1000)
    assert c["paired"]["1x"]["mean"] == pytest.approx(0.2 / 3)  # 0.1, 0.0, 0.1
    assert c["paired"]["2x"]["mean"] == pytest.approx(-0.7 / 3)  # -0.2, -0.3, -0.2
    # the rise past the context: (0.1 - 0.4), (0.2 - 0.5), (0.0 - 0.3): -0.3 on every seed
    assert c["rise"]["2x"]["mean"] == pytest.approx(-0.3) and "1x" not in c["rise"]
    table = against_rope_table([c])
    assert "| crope | 900 | 1,000 | 3.167 | +0.067 [" in table
    for bad in ([], [c, None]):  # nothing stored, or a label not complete
        with pytest.raises(ValueError, match="against_rope gave None"):
            against_rope_table(bad)


def test_against_rope_reads_a_block_size_from_the_experiment_that_registers_it(tmp_path):
    from ropelib.experiments.basics import against_rope

    rope = [{"1x": 3.0}, {"1x": 3.1}, {"1x": 3.2}]
    _protocol_runs(tmp_path, "pe-basics-128", "rope", rope)
    _protocol_runs(tmp_path, "schemes-128-blocks", "hdd b=4", [{"1x": 3.5}] * 3)
    c = against_rope("hdd b=4", tmp_path)
    assert c["experiment"] == "schemes-128-blocks"
    assert c["paired"]["1x"]["mean"] == pytest.approx(0.4)
    assert against_rope("hdd b=4", tmp_path, experiment="schemes-128") is None
    assert against_rope("crope", tmp_path) is None  # schemes-128 holds nothing here


def test_plot_positions_draws_the_labels_of_several_experiments_in_the_order_asked(tmp_path):
    from ropelib.experiments.tables import plot_positions

    for name, label in (("one", "a"), ("two", "b"), ("two", "c")):
        (tmp_path / name).mkdir(exist_ok=True)
        protocol = {"1x": {"loss": 3.0, "targets": 4, "positions": [3.0, 2.0]}}
        record = make_record(
            experiment=name, run=f"{label}-seed0", label=label, seed=0, quick=False,
            config={"block_size": 2}, final={"protocol": protocol}, history=[],
            wall_time_s=1.0, origin=ORIGIN, val_loss={},
        )  # fmt: skip
        write_record(tmp_path / name / f"{label}-seed0.json", record)
    figure = plot_positions(["one", "two"], tmp_path, ("1x",), labels=("c", "a"))
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["c (1)", "a (1)"]
    assert figure._suptitle.get_text() == "one + two: loss by position"
    with pytest.raises(ValueError, match="no records of one in"):
        plot_positions("one", tmp_path, ("1x",), labels=("b",))


def test_against_rope_refuses_an_experiment_not_paired_with_rope_runs(tmp_path):
    from ropelib.experiments.basics import ROPE_OF, against_rope

    with pytest.raises(ValueError, match="experiment must be one of schemes-128, "):
        against_rope("crope", tmp_path, experiment="crope")
    assert ROPE_OF["schemes-128-bible"] == "schemes-128-bible"  # its own RoPE runs
    assert against_rope("crope", tmp_path, experiment="schemes-128-bible") is None


def test_bench_reports_name_a_file_that_is_not_a_bench_report(tmp_path):
    from ropelib.experiments.summary import bench_ranges_table, bench_reports

    table = {"title": "t", "reference": "a", "ratio": {"a": 1.0, "b": 2.0}}
    for i, ratio in enumerate((2.0, 2.5)):
        report = {"benchmarks": {"x float32": {**table, "ratio": {"a": 1.0, "b": ratio}}},
                  "device_name": "cpu", "torch": "2", "threads": 1, "git": {}}  # fmt: skip
        (tmp_path / f"run{i}.json").write_text(json.dumps(report))
    assert "| x float32 | a | b | 2.00–2.50x |" in bench_ranges_table(bench_reports(tmp_path))
    (tmp_path / "stray.json").write_text(json.dumps({"benchmarks": {}}))
    with pytest.raises(ValueError, match=r"stray.json lacks a bench report's keys \['device_name'"):
        bench_reports(tmp_path)


def test_gpu_figures_name_failed_tests_and_parts_that_stopped():
    from ropelib.experiments.summary import gpu_figures

    where = {"device": "cuda", "device_name": "NVIDIA H200", "torch": "2.11.0",
             "date": "2026-12-01T08:00:00+00:00"}  # fmt: skip
    tests = {**where, "path": "d/cuda-tests.json", "part": "cuda-tests", "timed_out": True,
             "counts": {"passed": 7, "failed": 1, "error": 0, "skipped": 0},
             "tests": [{"name": "tests.test_cuda.test_x", "outcome": "failed",
                        "message": "AssertionError: 2 != 1", "seconds": 0.5}]}  # fmt: skip
    stopped = {**where, "path": "d/bench.json", "part": "bench", "exit_code": 124,
               "error": "timed out"}  # fmt: skip
    lines = gpu_figures([tests, stopped]).splitlines()
    assert lines[0] == "**d/cuda-tests.json** (cuda-tests; NVIDIA H200, torch 2.11.0, 2026-12-01)"
    assert "tests marked `cuda`: 7 passed, 1 failed, 0 error, 0 skipped (timed out)" in lines
    assert "- failed: `tests.test_cuda.test_x`: AssertionError: 2 != 1" in lines
    assert "no figures: timed out (exit code 124)" in lines
