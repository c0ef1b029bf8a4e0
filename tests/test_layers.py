"""The package's imports point down only (DESIGN.md, "Layers"): read with `ast`, not imported.

methods (the maths) < model < trainer < experiments < cli and bench, with data and the file
helpers beside the methods at the bottom. A method module imports torch and other method
modules only, so that a user can take one method into their own attention layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ropelib"

METHODS = {
    "rope",
    "scaling",
    "xpos",
    "crope",
    "comrope",
    "hdd",
    "scan",
    "rove",
    "long_context",
    "bias",
}
BOTTOM = {"data", "files", "tasks"}  # infrastructure and task data: used by the layers above
MODEL = {"model", "schemes", "vision"}
TRAINER = {"train"}
EXPERIMENTS = {"experiments"}
TOP = {"cli", "bench", "__main__", "hf"}

# what each layer may import (besides itself)
ALLOWED = {
    "methods": {"methods"},
    "bottom": {"bottom"},
    "model": {"methods", "bottom", "model"},
    "trainer": {"methods", "bottom", "model", "trainer"},
    "experiments": {"methods", "bottom", "model", "trainer", "experiments"},
    "top": {"methods", "bottom", "model", "trainer", "experiments", "top"},
    "package": {"methods", "bottom", "model", "trainer", "experiments", "top", "package"},
}


def layer(module: str) -> str:
    """The layer of `ropelib.<module>` (dotted, without the `ropelib.` prefix)."""
    if module == "":
        return "package"
    head = module.split(".")[0]
    for name, members in (
        ("methods", METHODS),
        ("bottom", BOTTOM),
        ("model", MODEL),
        ("trainer", TRAINER),
        ("experiments", EXPERIMENTS),
        ("top", TOP),
    ):
        if head in members:
            return name
    raise AssertionError(f"ropelib.{module} belongs to no layer: add it to tests/test_layers.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def ropelib_imports(path: Path) -> list[tuple[int, str]]:
    """Every `ropelib.X` that `path` imports, at module level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "ropelib":  # from ropelib import rope, model
                names = [f"ropelib.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "ropelib" or name.startswith("ropelib."):
                found.append((node.lineno, name.removeprefix("ropelib").lstrip(".")))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in MODULES:
        layer(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_point_down(path: Path):
    source = module_name(path)
    allowed = ALLOWED[layer(source)]
    upward = [
        f"line {line}: ropelib.{target} ({layer(target)})"
        for line, target in ropelib_imports(path)
        if target and layer(target) not in allowed
    ]
    assert not upward, f"ropelib.{source} ({layer(source)}) imports upward: {upward}"


def test_the_checker_catches_an_upward_import(tmp_path):
    """Negative control: a method module importing the trainer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ropelib.train import TrainConfig\n")
    assert ropelib_imports(bad) == [(2, "train")]
    assert layer("train") not in ALLOWED[layer("rope")]
    assert layer("schemes.rope") == "model" and layer("experiments.crope") == "experiments"
