"""The wheel as a user installs it: built from the sources, installed into a fresh virtual
environment beside torch and numpy alone, used from outside the repository.

`pip install ropelib` must need only torch and numpy; the trainer's packages are the extra
`ropelib[train]`, and without them the command line says so in one line. torch is installed
into the new environment from the CPU build that pip finds locally (no download); building the
wheel needs setuptools only (no build isolation, no index).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # about a minute: a fresh environment and torch installed into it

ROOT = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"


def _run(args: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def readme_snippet() -> str:
    """The first Python block of README.md: RoPE in one's own attention."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python block"
    return blocks[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, Path]:
    """(the environment's python, a directory outside the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "ropelib", source / "ropelib", ignore=ignore)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "-q", "-w", tmp / "dist", source], cwd=tmp)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("ropelib-*.whl")
    made = _run([sys.executable, "-m", "venv", tmp / "venv"], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = tmp / "venv" / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for packages in ([TORCH, "numpy"], ["--no-deps", wheel]):
        installed = _run([*pip, *packages], cwd=tmp, timeout=600)
        assert installed.returncode == 0, installed.stderr
    outside = tmp / "elsewhere"
    outside.mkdir()
    return python, outside


def test_the_wheel_requires_torch_and_numpy_only(venv):
    python, outside = venv
    program = (
        "import importlib.metadata as m, re\n"
        "reqs = [r for r in m.requires('ropelib') if 'extra ==' not in r]\n"
        "print(sorted(re.split('[<>=!~ ;\\\\[]', r)[0].lower() for r in reqs))\n"
        "print(sorted(m.metadata('ropelib').get_all('Provides-Extra')))\n"
    )
    done = _run([python, "-c", program], cwd=outside)
    assert done.returncode == 0, done.stderr
    required, extras = done.stdout.splitlines()
    assert required == "['numpy', 'torch']"
    assert "'train'" in extras and "'book'" in extras and "'dev'" in extras
    check = _run([python, "-m", "pip", "check"], cwd=outside)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_readme_snippet_runs_from_the_installed_wheel(venv):
    python, outside = venv
    (outside / "snippet.py").write_text(
        readme_snippet() + "\nimport ropelib\nprint(ropelib.__file__)\n"
    )
    done = _run([python, "snippet.py"], cwd=outside)
    assert done.returncode == 0, done.stderr
    location = Path(done.stdout.strip().splitlines()[-1])
    assert location.is_relative_to(python.parent.parent) and not location.is_relative_to(ROOT)


def test_py_typed_ships_and_every_subpackage_imports(venv):
    python, outside = venv
    program = (
        "import importlib.resources\n"
        "import ropelib.cli, ropelib.data, ropelib.experiments, ropelib.schemes, ropelib.train\n"
        "assert importlib.resources.files('ropelib').joinpath('py.typed').is_file()\n"
    )
    done = _run([python, "-c", program], cwd=outside)
    assert done.returncode == 0, done.stderr


def test_a_missing_extra_is_one_line_naming_its_install(venv):
    python, outside = venv
    (outside / "tiny.txt").write_text("To be, or not to be, that is the question.\n" * 40)
    for args in (["train", "--preset=cpu-tiny", "--corpus=tiny.txt"], ["sample", "no-run"]):
        done = _run([python, "-m", "ropelib", *args], cwd=outside)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert "pip install 'ropelib[train]'" in done.stderr, done.stderr
