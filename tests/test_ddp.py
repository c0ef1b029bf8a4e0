"""Data-parallel training (appendix *The trainer*): two processes under torchrun, Gloo on CPU,
reach the losses of one process that sees the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch.distributed

from ropelib.data import load_text, prepare_dataset
from ropelib.train.metrics import read_metrics

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch was built without the Gloo backend",
)


def test_two_processes_match_one(tmp_path):
    corpus = tmp_path / "shakespeare-200k.txt"
    corpus.write_text(load_text("shakespeare")[:200_000])
    prepare_dataset(str(corpus), tokenizer="char", data_dir=tmp_path / "data")
    # grad_accum=2: one process runs both micro-batches of a step, or each of two runs one
    train = ["-m", "ropelib", "train", "--preset=cpu-tiny", f"--corpus={corpus}",
             f"--data_dir={tmp_path / 'data'}", "--grad_accum=2", "--max_iters=8",
             "--eval_interval=4", "--checkpoint_interval=4"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    options = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    two = subprocess.Popen([*launch, *train, f"--out_dir={tmp_path / 'two'}"], **options)
    one = subprocess.Popen([sys.executable, *train, f"--out_dir={tmp_path / 'one'}"], **options)
    stdout = {}
    for name, process in [("one", one), ("two", two)]:
        stdout[name], stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-3000:]
    assert "on 1 process(es)" in stdout["one"] and "on 2 process(es)" in stdout["two"]
    assert stdout["two"].count("done:") == 1  # only process 0 reports

    single, parallel = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [(r["iter"], r["kind"]) for r in parallel] == [(r["iter"], r["kind"]) for r in single]
    for mine, theirs in zip(parallel, single, strict=True):
        if mine["kind"] == "train":
            assert abs(mine["loss"] - theirs["loss"]) < 1e-5, (mine, theirs)
        else:
            for length, value in mine["val_loss"].items():
                assert abs(value - theirs["val_loss"][length]) < 1e-5, (mine, theirs)
    assert single[-1]["iter"] == 8
