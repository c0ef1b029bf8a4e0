"""The README's usage snippets run as printed, each in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


BLOCKS = python_blocks(README.read_text())


def run(block: str) -> dict:
    namespace: dict = {"__name__": "readme"}
    exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_the_readme_has_a_snippet_per_method():
    text = "\n".join(BLOCKS)
    for name in (
        "RotaryEmbedding",
        "XPos",
        "ComplexQKV",
        "AxialRoPE",
        "ComRoPEAP",
        "HDDRoPE",
        "RotaryValues",
        "scaled_frequencies",
        "ALiBi",
        "T5RelativeBias",
        "PartialRoPE",
    ):
        assert name in text, f"no README snippet uses {name}"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(index):
    namespace = run(BLOCKS[index])
    assert any(isinstance(value, torch.Tensor) for value in namespace.values())


def test_rope_snippet_does_what_it_says():
    from ropelib import apply_rope

    namespace = run(BLOCKS[0])
    y, q, q_rot, k_rot = (namespace[name] for name in ("y", "q", "q_rot", "k_rot"))
    assert y.shape == q.shape
    torch.testing.assert_close(q_rot, apply_rope(q))  # the snippet rotates as apply_rope does
    assert not torch.allclose(q_rot, q)


def test_method_snippets_rotate_relatively():
    """Each rotary snippet's q_rot·k_rot depends on positions only through m - n: shifting
    every position leaves the scores unchanged (checked on the snippet's own module)."""
    from ropelib import RotaryValues, XPos

    torch.manual_seed(0)
    q, k = torch.randn(2, 1, 2, 8, 16).unbind(0)
    for module in (XPos(16), RotaryValues(16)):
        a = module.rotate_queries_and_keys(q, k, torch.arange(8))
        b = module.rotate_queries_and_keys(q, k, torch.arange(8) + 100)
        torch.testing.assert_close(a[0] @ a[1].mT, b[0] @ b[1].mT, atol=1e-4, rtol=1e-4)
