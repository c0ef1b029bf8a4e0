"""`python -m ropelib` (the chapter *The command line*, notebooks/90_cli.md): bad input, a
`ConfigError` or a command-line syntax error, is one line on stderr and exit status 2; any other
exception keeps its traceback and exits with status 1.

Starting a fresh interpreter imports torch, about 3 s of CPU each here, so the 56 bad inputs run
as forked copies of one process that has imported ropelib once: each child runs
`python -m ropelib ARGS` through `runpy` exactly as the interpreter would, with its own stdout,
stderr and exit status. A few cases also run in genuinely fresh interpreters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import json, os, runpy, signal, sys, tempfile, traceback
import ropelib.cli, ropelib.data, ropelib.model, ropelib.train  # imported once, before forking
import ropelib.bench, ropelib.experiments, ropelib.schemes
import matplotlib.figure, torch._dynamo  # imported on first use by the plot and by AdamW


def _raises(error):
    def benchmark(quick=False):
        raise error

    return benchmark


# benchmarks that fail as bad input and as bugs do, for the cases named "raises ..."
ropelib.bench.BENCHMARKS.update({
    "raises-config-error": _raises(ropelib.model.ConfigError("n_head must divide n_embd")),
    "raises-value-error": _raises(ValueError("shapes [2, 8] and [2, 9] do not match")),
    "raises-runtime-error": _raises(RuntimeError("CUDA error: device-side assert")),
})

results = []
for args in json.load(sys.stdin):
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        signal.alarm(60)  # a case that starts a real training run must not hang the suite
        sys.argv = ["ropelib", *args]
        code = 0
        try:
            runpy.run_module("ropelib", run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    out.seek(0)
    err.seek(0)
    results.append({"status": os.waitstatus_to_exitcode(status),
                    "stdout": out.read().decode(), "stderr": err.read().decode()})
json.dump(results, sys.stdout)
"""


def _write_files(tmp: Path) -> None:
    """The files some cases refer to: a tiny corpus and a checkpoint cut off mid-write."""
    (tmp / "tiny.txt").write_text("To be, or not to be, that is the question.\n" * 40)
    (tmp / "broken-run").mkdir(exist_ok=True)
    (tmp / "broken-run" / "checkpoint.json").write_text('{"iter": 5, "tens')


def bad_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """id -> (arguments, a word the one-line error must contain); files from `_write_files`."""
    tiny, broken = tmp / "tiny.txt", tmp / "broken-run"
    tiny_run = [f"--corpus={tiny}", "--tokenizer=char", f"--data_dir={tmp / 'data'}"]
    cases = {
        "unknown scheme": (["--pe=no-such-scheme"], "pe"),
        "odd head_dim for rope": (["--pe=rope", "--n_embd=36", "--n_head=4"], "head"),
        "odd head_dim for xpos": (["--pe=xpos", "--n_embd=20", "--n_head=4"], "head"),
        "n_embd not divisible by n_head": (["--n_embd=130", "--n_head=4"], "n_head"),
        "negative steps": (["--max_iters=-5"], "max_iters"),
        "fractional steps": (["--max_iters=2.5"], "max_iters"),
        "unknown preset": (["--preset=huge"], "preset"),
        "unreadable data path": (["--corpus=/no/such/corpus.txt"], "corpus"),
        "block_size longer than the data split": ([*tiny_run, "--block_size=512"], "block_size"),
        "unknown key": (["--learning_rate=0.1"], "unknown option"),
        "non-numeric value": (["--lr=abc"], "lr"),
        "lr zero": (["--lr=0"], "lr"),
        "lr negative, space separated": (["--lr", "-1"], "lr"),
        "batch_size 0": (["--batch_size=0"], "batch_size"),
        "grad_accum 0": (["--grad_accum=0"], "grad_accum"),
        "unknown schedule": (["--schedule=linear"], "schedule"),
        "unknown device": (["--device=tpu"], "device"),
        "unknown dtype": (["--dtype=float16"], "dtype"),
        "min_lr above lr": (["--lr=1e-3", "--min_lr=1"], "min_lr"),
        "negative warmup": (["--warmup_iters=-1"], "warmup_iters"),
        "no eval lengths": (["--eval_lengths="], "eval_lengths"),
        "repeated eval lengths": (["--eval_lengths=1,1"], "eval_lengths"),
        "gamma 0": (["--gamma=0"], "gamma"),
        "step_size 0": (["--step_size=0"], "step_size"),
        "negative weight decay": (["--weight_decay=-0.1"], "weight_decay"),
        "one beta": (["--betas=0.9"], "betas"),
        "beta above 1": (["--betas=1.5,0.9"], "betas"),
        "negative grad_clip": (["--grad_clip=-1"], "grad_clip"),
        "eval_interval 0": (["--eval_interval=0"], "eval_interval"),
        "eval_iters 0": (["--eval_iters=0"], "eval_iters"),
        "eval length 0": (["--eval_lengths=0,1"], "eval_lengths"),
        "non-numeric eval length": (["--eval_lengths=1,x"], "eval_lengths"),
        "negative seed": (["--seed=-1"], "seed"),
        "dropout above 1": (["--dropout=1.5"], "dropout"),
        "unknown tokenizer": (["--tokenizer=wordpiece"], "tokenizer"),
        "bpe vocabulary below 256": (["--vocab_size=100"], "vocab_size"),
        "bool that is not": (["--compile=maybe"], "compile"),
        "zero layers": (["--n_layer=0"], "n_layer"),
        "block_size 0": (["--block_size=0"], "block_size"),
        "positional argument": (["stray"], "--key=value"),
        "key without value": (["--pe"], "pe"),
        "val_fraction above 1": (["--val_fraction=1.5"], "val_fraction"),
        "rope_base 0": (["--rope_base=0"], "rope_base"),
        "pe_options not an object": (["--pe_options=[1]"], "pe_options"),
        "unknown pe option": (["--pe=rope", '--pe_options={"bogus": 1}'], "pe_options"),
        "checkpoint_interval 0": (["--checkpoint_interval=0"], "checkpoint_interval"),
        "data_dir is a file": ([f"--data_dir={tiny}"], "data_dir"),
        "out_dir is a file": ([f"--out_dir={tiny}"], "out_dir"),
        "truncated checkpoint": (
            [*tiny_run, "--block_size=16", "--resume", f"--out_dir={broken}"],
            "corrupted",
        ),
    }
    cases = {name: (["train", *args], word) for name, (args, word) in cases.items()}
    cases.update(
        {
            "unknown experiment": (["experiment", "no-such-experiment"], "experiment"),
            "zero seeds": (["experiment", "pe-basics", "--seeds=0"], "seeds"),
            "non-numeric seeds": (["experiment", "pe-basics", "--seeds=abc"], "seeds"),
            "experiment without a name": (["experiment"], "name"),
            "unknown benchmark": (["bench", "no-such-benchmark"], "benchmark"),
            "unknown command": (["frobnicate"], "frobnicate"),
            "unknown flag of bench": (["bench", "rope", "--bogus"], "--bogus"),
            "a ConfigError from inside a command": (["bench", "raises-config-error"], "n_head"),
        }
    )
    return cases


# Exceptions that are not bad input: (arguments, the exception's last traceback line).
BUGS = {
    "a ValueError that is no ConfigError": (
        ["bench", "raises-value-error"],
        "ValueError: shapes [2, 8] and [2, 9] do not match",
    ),
    "a RuntimeError": (
        ["bench", "raises-runtime-error"],
        "RuntimeError: CUDA error: device-side assert",
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("cli")
    _write_files(tmp)
    cases = bad_cases(tmp)
    tiny = tmp / "tiny.txt"
    good = ["train", "--preset=cpu-tiny", f"--corpus={tiny}", "--block_size=16", "--max_iters=2"]
    good += ["--eval_interval=1", f"--data_dir={tmp / 'data'}", f"--out_dir={tmp / 'good'}"]
    arguments = [args for args, _ in cases.values()] + [good]
    arguments += [args for args, _ in BUGS.values()]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(arguments),
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    return dict(zip([*cases, "good", *BUGS], results, strict=True))


def _bad_case_names() -> list[str]:
    return list(bad_cases(Path("tmp")))


def _check_one_line(result: dict, word: str) -> None:
    stderr = result["stderr"]
    assert result["status"] == 2, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("ropelib: error: "), stderr
    assert word.lower() in stderr.lower(), stderr


@pytest.mark.parametrize("name", _bad_case_names())
def test_bad_input_is_one_line_and_status_2(outcomes, tmp_path, name):
    _check_one_line(outcomes[name], bad_cases(tmp_path)[name][1])


def test_at_least_30_bad_inputs():
    assert len(_bad_case_names()) >= 30


def test_good_train_command_runs(outcomes):
    result = outcomes["good"]
    assert result["status"] == 0, result["stderr"]
    assert "done: 2 steps" in result["stdout"]


@pytest.mark.parametrize("name", list(BUGS))
def test_other_exceptions_keep_their_traceback(outcomes, name):
    result, last_line = outcomes[name], BUGS[name][1]
    assert result["status"] not in (0, 2), result
    assert "Traceback (most recent call last)" in result["stderr"], result["stderr"]
    assert result["stderr"].rstrip().splitlines()[-1] == last_line, result["stderr"]
    assert "ropelib: error:" not in result["stderr"], "a bug was reported as bad input"


def test_a_bug_keeps_its_traceback_in_a_fresh_interpreter():
    """The same as `python -m ropelib bench NAME` for a benchmark that has a bug."""
    program = (
        "import runpy, sys\n"
        "import ropelib.bench\n"
        "def broken(quick=False):\n"
        "    raise ValueError('a bug, not bad input')\n"
        "ropelib.bench.BENCHMARKS['broken'] = broken\n"
        "sys.argv = ['ropelib', 'bench', 'broken']\n"
        "runpy.run_module('ropelib', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().endswith("ValueError: a bug, not bad input"), done.stderr
    assert "in run_bench" in done.stderr  # the frames of the command are kept


def test_fresh_interpreters():
    cases = [
        (["train", "--preset=no-such-preset"], "preset"),
        (["train", "--pe=rope", "--n_embd=36", "--n_head=4"], "head"),
        (["experiment", "no-such-experiment"], "experiment"),
    ]
    processes = [  # started together: each spends its time importing torch
        subprocess.Popen(
            [sys.executable, "-m", "ropelib", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for args, _ in cases
    ]
    for process, (_, word) in zip(processes, cases, strict=True):
        _, stderr = process.communicate(timeout=120)
        _check_one_line({"status": process.returncode, "stderr": stderr}, word)
