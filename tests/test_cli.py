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


# ---- sample, eval, checkpoints with their tokenizer, --help, --config, faults (in-process) ----

TEXT = "To be, or not to be, that is the question.\n" * 40


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    from ropelib.cli import main

    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A cpu-tiny run of four steps on a tiny corpus: its directory."""
    from ropelib.cli import main

    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "tiny.txt").write_text(TEXT)
    args = ["train", "--preset=cpu-tiny", f"--corpus={tmp / 'tiny.txt'}", "--block_size=16"]
    args += ["--max_iters=4", f"--data_dir={tmp / 'data'}", f"--out_dir={tmp / 'run'}"]
    assert main(args) == 0
    return tmp / "run"


def test_checkpoint_holds_the_tokenizer_and_round_trips_it(trained):
    from ropelib.data import prepare_dataset
    from ropelib.train import load_model
    from ropelib.train.checkpoint import load_tokenizer_of

    manifest = json.loads((trained / "checkpoint.json").read_text())
    model, config = load_model(trained)
    tokenizer = load_tokenizer_of(trained)
    assert (
        manifest["tokenizer"]["file"] == "tokenizer.json" and (trained / "tokenizer.json").exists()
    )
    assert tokenizer.vocab_size == manifest["tokenizer"]["vocab_size"] == model.config.vocab_size
    data = prepare_dataset(config.corpus, config.tokenizer, config.vocab_size, config.data_dir)
    assert tokenizer.to_json() == data.tokenizer.to_json()
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT


def test_a_damaged_or_foreign_tokenizer_is_refused(trained, tmp_path):
    import shutil

    from ropelib.data import CharTokenizer
    from ropelib.model import GPT, ConfigError, GPTConfig
    from ropelib.train import save_checkpoint
    from ropelib.train.checkpoint import load_tokenizer_of

    copy = Path(shutil.copytree(trained, tmp_path / "copy"))
    (copy / "tokenizer.json").write_text(CharTokenizer(TEXT + "Z").to_json())
    with pytest.raises(ConfigError, match="tokenizer of the checkpoint .* differs"):
        load_tokenizer_of(copy)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=17))
    with pytest.raises(ConfigError, match="18 tokens, the model's vocabulary 17"):
        save_checkpoint(tmp_path / "user", model, tokenizer=CharTokenizer(TEXT + "Z"))


def test_save_and_load_any_gpt_a_user_builds(tmp_path):
    import torch

    from ropelib.data import CharTokenizer
    from ropelib.model import GPT, GPTConfig
    from ropelib.train import load_model, save_checkpoint
    from ropelib.train.checkpoint import load_tokenizer_of

    tokenizer = CharTokenizer(TEXT)
    config = GPTConfig(
        n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=tokenizer.vocab_size, pe="xpos"
    )
    torch.manual_seed(0)
    model = GPT(config)
    save_checkpoint(tmp_path, model, tokenizer=tokenizer)  # no optimiser, no trainer state
    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config == config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    assert load_tokenizer_of(tmp_path).to_json() == tokenizer.to_json()


def test_sample_streams_the_tokens_generate_draws(trained, capsys, monkeypatch):
    import torch

    import ropelib.cli
    from ropelib.train import load_model
    from ropelib.train.checkpoint import load_tokenizer_of

    model, _ = load_model(trained)
    tokenizer = load_tokenizer_of(trained)
    prompt = tokenizer.encode("To be")
    expected = model.generate(
        torch.tensor([prompt]),
        30,
        temperature=0.8,
        top_k=5,
        generator=torch.Generator().manual_seed(3),
    )
    inputs = []  # the KV cache: the prompt, then one token per pass (none after the last)
    forward = type(model).forward_features
    monkeypatch.setattr(
        type(model),
        "forward_features",
        lambda self, idx, **kw: inputs.append(idx.shape[1]) or forward(self, idx, **kw),
    )
    writes = []
    real_print = print
    monkeypatch.setattr(
        ropelib.cli, "print", lambda *a, **k: writes.append(a) or real_print(*a, **k), raising=False
    )
    args = ["sample", trained, "--prompt", "To be", "--max_new_tokens", "30"]
    status, out, err = _main(args + ["--temperature", "0.8", "--top_k", "5", "--seed", "3"], capsys)
    assert status == 0, err
    assert out == tokenizer.decode(expected[0]) + "\n"
    assert inputs[0] == len(prompt) and set(inputs[1:]) == {1} and len(inputs) == 30
    assert len(writes) >= 30  # streamed: the prompt, each new character, the final newline


def test_sample_rejects_bad_numbers_in_one_line(trained, capsys):
    for bad, word in [
        (["--temperature=-1"], "temperature"),
        (["--top_k=0"], "top_k"),
        (["--max_new_tokens=x"], "max_new_tokens"),
        (["--prompt=Ω"], "prompt"),
    ]:
        status, _, err = _main(["sample", trained, *bad], capsys)
        assert status == 2 and err.count("\n") == 1 and word in err, err


def test_eval_prints_a_table_and_writes_json(trained, tmp_path, capsys):
    status, out, err = _main(
        ["eval", trained, "--lengths=1,2,4", f"--json={tmp_path / 'e.json'}"], capsys
    )
    assert status == 0, err
    header, columns, *rows = out.splitlines()
    assert "pe=rope" in header and columns.split() == ["context", "tokens", "loss"]
    assert [row.split()[:2] for row in rows] == [["1x", "16"], ["2x", "32"], ["4x", "64"]]
    result = json.loads((tmp_path / "e.json").read_text())
    assert list(result["val_loss"]) == ["1x", "2x", "4x"] and result["block_size"] == 16
    assert result["targets"] >= 16 and f"{result['targets']} targets" in header
    for row, loss in zip(rows, result["val_loss"].values(), strict=True):
        assert 0 < loss < 5 and row.split()[2] == f"{loss:.4f}"
    scaled = ["eval", trained, "--lengths=1,2", "--rope_scaling=linear", "--factor=2"]
    status, out, err = _main([*scaled, f"--json={tmp_path / 's.json'}"], capsys)
    assert status == 0, err
    linear = json.loads((tmp_path / "s.json").read_text())
    assert linear["rope_scaling"] == "linear" and linear["rope_parameters"] == {"factor": 2.0}
    assert linear["val_loss"]["1x"] != result["val_loss"]["1x"]  # the positions were scaled
    kept = (tmp_path / "s.json").read_text()  # an existing file: refused before evaluating
    status, out, err = _main([*scaled, f"--json={tmp_path / 's.json'}"], capsys)
    assert status == 2 and err.count("\n") == 1 and "exists already" in err and not out
    assert (tmp_path / "s.json").read_text() == kept
    status, out, err = _main([*scaled, f"--json={tmp_path / 's.json' / 'x.json'}"], capsys)
    assert status == 2 and err.count("\n") == 1 and "cannot write" in err and not out
    nested = tmp_path / "made" / "e.json"  # a missing directory is made
    assert _main(["eval", trained, "--lengths=1", f"--json={nested}"], capsys)[0] == 0
    assert json.loads(nested.read_text())["val_loss"].keys() == {"1x"}
    for bad, word in [
        (["--rope_scaling=bogus"], "rope_scaling"),
        (["--factor=2"], "rope_scaling"),
        (["--lengths=0,1"], "lengths"),
        (["--lengths=1,64"], "lengths"),  # a window longer than the validation split
        (["--rope_options=[1]"], "rope_options"),
    ]:
        status, _, err = _main(["eval", trained, *bad], capsys)
        assert status == 2 and err.count("\n") == 1 and word in err, err


def test_a_corpus_that_changed_is_one_line_for_eval_and_resume(trained, capsys):
    from ropelib.train import load_model

    _, config = load_model(trained)
    corpus = Path(config.corpus)
    corpus.write_text(TEXT + "Zounds! quoth Xerxes.\n")  # new characters: another tokenizer
    try:
        status, _, err = _main(["eval", trained], capsys)
        assert status == 2 and err.count("\n") == 1, err
        assert "tokenization (char, 22 tokens) differs from the checkpoint's (char, 17" in err
        resume = [
            "train",
            "--preset=cpu-tiny",
            f"--corpus={corpus}",
            "--block_size=16",
            "--max_iters=4",
            f"--data_dir={config.data_dir}",
            f"--out_dir={trained}",
            "--resume",
        ]
        status, _, err = _main(resume, capsys)
        assert status == 2 and err.count("\n") == 1 and "tokenizer_sha256" in err, err
    finally:
        corpus.write_text(TEXT)


def test_train_help_lists_every_option_grouped_with_types_and_choices(capsys):
    import dataclasses

    from ropelib.model import POSITION_SCHEMES
    from ropelib.train import PRESETS, TrainConfig
    from ropelib.train.config import option_groups

    status, out, _ = _main(["train", "--help"], capsys)
    assert status == 0
    groups = [out.index(f"\n{name} options:") for name in ("model", "data", "optimisation", "run")]
    assert groups == sorted(groups)
    for group, names in option_groups().items():
        start = out.index(f"\n{group} options:")
        end = min([g for g in groups if g > start] + [len(out)])
        for name in names:
            assert f"--{name} " in out[start:end], name
    assert {f.name for f in dataclasses.fields(TrainConfig)} == {
        name for names in option_groups().values() for name in names
    }
    assert "--lr FLOAT" in out and "--max_iters INT" in out and "--betas FLOAT,FLOAT" in out
    assert "--pe_options JSON" in out and "default 0.001" in out
    assert "--init_from STR       default \"\"" in out  # an empty default is shown as ""
    flat = " ".join(out.split())
    assert all(name in flat for name in PRESETS) and "--config FILE" in out
    schemes = flat[flat.index("--pe STR") : flat.index("--dropout")].replace(" ", "")
    assert all(name in schemes for name in POSITION_SCHEMES)
    assert "oneofcosine,step" in flat.replace(" ", "") and "oneofbpe,char" in flat.replace(" ", "")


def test_config_files_toml_and_json_under_the_line(tmp_path, capsys):
    from ropelib.train import config_from_args

    (tmp_path / "run.toml").write_text(
        'preset = "cpu-tiny"\nlr = 1e-3\nbetas = [0.9, 0.99]\npe = "xpos"\n'
        "[pe_options]\ngamma = 0.5\n"
    )
    (tmp_path / "run.json").write_text('{"n_layer": 3, "eval_lengths": [1, 2], "lr": 0.002}')
    toml = config_from_args([f"--config={tmp_path / 'run.toml'}", "--lr=5e-3"])
    assert (toml.n_embd, toml.lr, toml.betas, toml.pe) == (32, 5e-3, (0.9, 0.99), "xpos")
    assert toml.pe_options == {"gamma": 0.5}
    both = config_from_args(["--preset=cpu-tiny", f"--config={tmp_path / 'run.json'}"])
    assert (both.n_layer, both.eval_lengths, both.lr, both.n_embd) == (3, (1, 2), 0.002, 32)
    bad = {
        "syntax.toml": ("lr = = 1\n", "cannot be read"),
        "key.toml": ("learning_rate = 0.1\n", "unknown option 'learning_rate'"),
        "type.json": ('{"lr": "fast"}', "lr"),
        "list.json": ("[1, 2]", "object"),
        "preset.toml": ('preset = "huge"\n', "preset"),
    }
    for name, (text, _) in bad.items():
        (tmp_path / name).write_text(text)
    cases = [[f"--config={tmp_path / name}"] for name in bad] + [["--config=/no/such.toml"]]
    for args, word in zip(cases, [*(w for _, w in bad.values()), "cannot be read"], strict=True):
        status, _, err = _main(["train", *args], capsys)
        assert status == 2 and err.count("\n") == 1 and word in err, err


def test_run_faults_exit_with_their_status(tmp_path, capsys):
    import ropelib.bench
    from ropelib.data.tokenizers import import_optional
    from ropelib.train.run import Interrupted

    (tmp_path / "tiny.txt").write_text(TEXT)
    args = ["train", "--preset=cpu-tiny", f"--corpus={tmp_path / 'tiny.txt'}", "--block_size=16"]
    args += ["--max_iters=3", f"--data_dir={tmp_path / 'data'}", f"--out_dir={tmp_path / 'run'}"]
    status, _, err = _main([*args, "--lr=1e30", "--min_lr=0", "--grad_clip=0"], capsys)
    assert status == 3 and err.count("\n") == 1 and "diverged" in err, err

    def raising(error):
        def benchmark(quick=False):
            raise error

        return benchmark

    def missing(quick=False):
        import sys

        sys.modules["tqdm"] = None  # as if the extra were not installed
        try:
            import_optional("tqdm", "a progress bar")
        finally:
            del sys.modules["tqdm"]

    cases = {
        "sigterm": (raising(Interrupted("interrupted by SIGTERM", 15)), 143, "SIGTERM"),
        "ctrl-c": (raising(KeyboardInterrupt()), 130, "interrupted"),
        "extra": (missing, 2, "pip install 'ropelib[train]'"),
        "sklearn": (raising(ModuleNotFoundError("No module", name="sklearn")), 2, "ropelib[book]"),
        "hinted": (
            raising(ImportError("the digits need scikit-learn: pip install scikit-learn")),
            2,
            "pip install scikit-learn",
        ),
    }
    try:
        for name, (benchmark, code, word) in cases.items():
            ropelib.bench.BENCHMARKS[name] = benchmark
            status, _, err = _main(["bench", name], capsys)
            assert status == code and err.count("\n") == 1 and word in err, (name, err)
        ropelib.bench.BENCHMARKS["bug"] = raising(ModuleNotFoundError("x", name="no_such_module"))
        with pytest.raises(ModuleNotFoundError):  # not an optional package: a bug, traceback
            _main(["bench", "bug"], capsys)
    finally:
        for name in [*cases, "bug"]:
            ropelib.bench.BENCHMARKS.pop(name, None)


def test_bench_without_a_name_runs_every_benchmark_into_one_report(tmp_path, monkeypatch, capsys):
    import json

    import ropelib.bench as bench
    from ropelib.cli import main

    calls = []

    def fake(quick, **options):
        calls.append((quick, options["dtype"]))
        return {"ratio": 1.5}

    monkeypatch.setattr(bench, "BENCHMARKS", {"one": fake, "two": fake})
    report = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(report)]) == 0
    assert calls == [(True, "float32"), (True, "float32")]  # both, in one process
    data = json.loads(report.read_text())
    assert set(data["benchmarks"]) == {"one float32", "two float32"}
    assert data["benchmarks"]["one float32"] == {"ratio": 1.5} and data["quick"] is True


def test_bench_reports_are_new_files_made_before_anything_runs(tmp_path, monkeypatch, capsys):
    import json

    import ropelib.bench as bench

    calls = []
    monkeypatch.setattr(bench, "BENCHMARKS", {"one": lambda quick, **o: calls.append(1) or {}})
    monkeypatch.chdir(tmp_path)
    status, out, _ = _main(["bench", "--quick"], capsys)  # the default: runs/bench/, made
    (made,) = (tmp_path / "runs" / "bench").glob("bench-*.json")
    assert status == 0 and f"report: runs/bench/{made.name}" in out and calls == [1]
    assert set(json.loads(made.read_text())["benchmarks"]) == {"one float32"}
    nested = tmp_path / "new" / "dir" / "r.json"
    assert _main(["bench", "--quick", "--json", nested], capsys)[0] == 0 and nested.exists()
    kept = made.read_text()
    status, _, err = _main(["bench", "--quick", "--json", made], capsys)
    assert status == 2 and err.count("\n") == 1 and "exists already" in err
    assert made.read_text() == kept and calls == [1, 1]  # nothing ran, nothing overwritten
    status, _, err = _main(["bench", "--quick", "--json", made / "under-a-file.json"], capsys)
    assert status == 2 and err.count("\n") == 1 and "cannot write" in err
    assert calls == [1, 1]


def test_a_report_file_is_created_once(tmp_path):
    from ropelib.bench import new_report

    path = new_report(str(tmp_path / "r.json"), "bench", {"a": 1})
    with pytest.raises(FileExistsError, match="exists already"):
        new_report(path, "bench", {"a": 2})


def test_new_file_path_makes_the_directory_and_refuses_what_exists(tmp_path):
    from ropelib.files import new_file_path

    path = new_file_path(tmp_path / "a" / "b" / "r.json")
    assert path.parent.is_dir() and not path.exists()
    path.write_text("kept")
    with pytest.raises(FileExistsError, match="exists already"):
        new_file_path(path)
    with pytest.raises(NotADirectoryError, match="cannot write"):
        new_file_path(path / "under-a-file.json")
    assert path.read_text() == "kept"
