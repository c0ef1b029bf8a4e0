"""The README's usage snippet runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_snippet_runs_and_does_what_it_says():
    blocks = python_blocks(README.read_text())
    assert blocks, "the README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    import torch

    from ropelib import apply_rope

    y, q, q_rot, k_rot = (namespace[name] for name in ("y", "q", "q_rot", "k_rot"))
    assert y.shape == q.shape
    torch.testing.assert_close(q_rot, apply_rope(q))  # the snippet rotates as apply_rope does
    assert not torch.allclose(q_rot, q)
