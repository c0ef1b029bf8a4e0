"""`tools/gpu_check.sh --dry`: the GPU check's code on the CPU at tiny sizes, and the schema of
the JSON it writes, so that the script still works when a GPU comes along."""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "gpu_check.sh"
BENCHMARKS = ("rope", "comrope", "crope", "hdd", "train")
DTYPES = ("bfloat16", "float32")
ENVIRONMENT = {"device", "device_name", "torch", "cuda", "python", "threads", "date"}
TABLE = {"title", "reference", "seconds", "ratio", "peak_memory_bytes"}


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def dry(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu-check")
    result = run_script("--dry", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def load(out: Path, name: str) -> dict:
    report = json.loads((out / name).read_text())
    assert ENVIRONMENT <= set(report), f"{name} lacks {ENVIRONMENT - set(report)}"
    assert report["device"] == "cpu" and report["torch"] == torch.__version__
    assert datetime.datetime.fromisoformat(report["date"]).tzinfo is not None
    assert "error" not in report, report.get("error")
    return report


def check_table(table: dict) -> None:
    assert TABLE <= set(table), f"{table.get('title')}: lacks {TABLE - set(table)}"
    assert set(table["seconds"]) == set(table["ratio"]) and table["seconds"]
    assert table["reference"] in table["seconds"]
    assert math.isclose(table["ratio"][table["reference"]], 1.0)
    assert all(seconds > 0 for seconds in table["seconds"].values())
    assert table["peak_memory_bytes"] is None  # peak memory is measured on CUDA only


def test_dry_run_writes_the_three_reports_and_a_log(dry):
    names = {p.name for p in dry.iterdir()}
    assert {"cuda-tests.json", "bench.json", "training-run.json", "gpu-check.log"} <= names


def test_cuda_tests_are_collected_and_summarised(dry):
    report = load(dry, "cuda-tests.json")
    counts, tests = report["counts"], report["tests"]
    assert set(counts) == {"passed", "failed", "error", "skipped"}
    assert sum(counts.values()) == len(tests) > 10
    assert report["exit_code"] == 0 and report["timed_out"] is False
    assert counts["failed"] == counts["error"] == 0
    names = " ".join(t["name"] for t in tests)
    for kind in ("every_scheme", "bf16_autocast", "sdpa", "compiled", "kv_cache"):
        assert kind in names, kind
    # the dry run runs them on the CPU: all pass but what only CUDA has, which says so
    skipped = [t for t in tests if t["outcome"] == "skipped"]
    assert counts["passed"] == len(tests) - len(skipped) > 30
    assert {t["message"] for t in skipped} == {"the memory-efficient SDPA kernel is CUDA's only"}


def test_bench_report_has_every_benchmark_in_both_dtypes(dry):
    report = load(dry, "bench.json")
    assert report["quick"] is True and report["compile_backend"] == "aot_eager"
    expected = {f"{name} {dtype}" for name in BENCHMARKS for dtype in DTYPES}
    assert set(report["benchmarks"]) == expected
    for name, result in report["benchmarks"].items():
        assert "error" not in result, f"{name}: {result.get('error')}"
    for dtype in DTYPES:
        benchmarks = {name: report["benchmarks"][f"{name} {dtype}"] for name in BENCHMARKS}
        for name in ("rope", "comrope", "train"):
            check_table(benchmarks[name])
        for table in (*benchmarks["crope"].values(), *benchmarks["hdd"].values()):
            check_table(table)
        check_table(benchmarks["comrope"]["dense"])


def test_rope_is_measured_against_the_copy_floor_eager_and_compiled(dry):
    report = load(dry, "bench.json")
    for dtype, size in (("float32", 4), ("bfloat16", 2)):
        rope = report["benchmarks"][f"rope {dtype}"]
        assert rope["reference"] == "copy floor" and dtype in rope["title"]
        assert rope["bytes_moved"] == 4 * (4 + 2) * 128 * 64 * size  # q: 4 heads, k: 2
        assert rope["copy_bandwidth_GBps"] > 0
        names = set(rope["seconds"])
        for pairing in ("interleaved", "half-split"):
            assert {f"RotaryEmbedding {pairing}", f"RotaryEmbedding {pairing}, compiled"} <= names
        if find_spec("transformers"):
            assert any(n.startswith("HF apply_rotary_pos_emb") for n in names)
        if find_spec("rotary_embedding_torch"):
            assert any(n.startswith("rotary-embedding-torch") for n in names)
        comrope = report["benchmarks"][f"comrope {dtype}"]
        assert {"RoPE", "copy floor", "ComRoPE-AP b=8, folded, compiled"} <= set(comrope["seconds"])


def test_training_run_reports_speed_and_loss_with_and_without_compile(dry):
    report = load(dry, "training-run.json")
    run = report["runs"]["bfloat16"]
    assert run["shape"]["n_layer"] == 1 and run["dtype"] == "bfloat16"  # the dry size
    suffix = ", compiled (aot_eager)"
    assert set(run["runs"]) == {"pe=rope", f"pe=rope{suffix}", "pe=crope", f"pe=crope{suffix}"}
    for result in run["runs"].values():
        assert result["steps"] >= 3 and result["tokens_per_s"] > 0
        assert math.isfinite(result["final_loss"]) and math.isfinite(result["first_loss"])


def test_the_full_run_is_made_of_the_same_parts():
    """Without --dry the script runs the same three commands, on CUDA, at full size."""
    text = SCRIPT.read_text()
    assert "device=cuda; quick=(); backend=inductor" in text
    assert text.count("from ropelib.bench import main") == 2
    for part in ("TESTS_S:-120", "BENCH_S:-210", "TRAIN_S:-110"):  # 440 s of the 8 minutes
        assert part in text


def test_usage_and_a_missing_gpu_are_one_line_errors(tmp_path):
    result = run_script(timeout=30)
    assert result.returncode == 2 and "usage: tools/gpu_check.sh" in result.stderr
    if not torch.cuda.is_available():
        result = run_script(str(tmp_path / "out"), timeout=120)
        assert result.returncode == 1 and "no CUDA device" in result.stderr


def test_the_wheels_to_carry_are_pinned_like_the_tests_references():
    """tools/gpu-wheels.txt pins each reference; rotary-embedding-torch as pyproject does."""
    import re

    lines = (ROOT / "tools" / "gpu-wheels.txt").read_text().splitlines()
    specs = [line.split("#")[0].strip() for line in lines]
    pins = dict(spec.split("==") for spec in specs if spec)
    assert set(pins) == {"rotary-embedding-torch", "liger-kernel"}
    assert all(re.fullmatch(r"\d+(\.\d+)+", version) for version in pins.values()), pins
    pyproject = (ROOT / "pyproject.toml").read_text()  # the dev extra's pin, quoted
    assert f'"rotary-embedding-torch=={pins["rotary-embedding-torch"]}"' in pyproject
    make = subprocess.run(
        ["make", "-n", "gpu-wheels"], capture_output=True, text=True, cwd=ROOT
    )
    assert make.returncode == 0, make.stderr
    assert "pip download" in make.stdout and "-r tools/gpu-wheels.txt" in make.stdout
    assert "-d tools/wheels" in make.stdout
    assert "/tools/wheels/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_results_chapter_shows_what_each_report_measured(dry):
    """Chapter *Results* renders the check's files: outcomes, ratios, speed and loss."""
    from ropelib.experiments.summary import gpu_figures, gpu_reports

    reports = gpu_reports(dry)
    assert {r["path"] for r in reports} == {
        "cuda-tests.json",
        "bench.json",
        "training-run.json",
    }
    text = gpu_figures(reports)
    tests = load(dry, "cuda-tests.json")["counts"]
    assert f"tests marked `cuda`: {tests['passed']} passed, " in text
    assert f"{tests['skipped']} skipped" in text
    bench = load(dry, "bench.json")["benchmarks"]
    for key in bench:
        assert f"| {key} |" in text or f"| {key}, " in text, key
    bandwidth = bench["rope float32"]["copy_bandwidth_GBps"]
    assert f"- rope float32: copy bandwidth {bandwidth:,.0f} GB/s" in text
    runs = load(dry, "training-run.json")["runs"]
    for dtype, part in runs.items():
        for name, run in part["runs"].items():
            assert f"| {dtype} | {name} | {run['steps']} |" in text
        assert f"corpus: {part['corpus']}" in text


def test_a_directory_that_holds_a_checks_figures_is_refused(tmp_path):
    (tmp_path / "bench.json").write_text('{"kept": true}')
    result = run_script("--dry", str(tmp_path), timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "exists already" in result.stderr and "never overwritten" in result.stderr
    assert (tmp_path / "bench.json").read_text() == '{"kept": true}'
    assert not (tmp_path / "gpu-check.log").exists()
