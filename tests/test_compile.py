"""`torch.compile(fullgraph=True)` of every rotation: no graph break, no recompilation as the
sequence grows, and the compiled result equals the eager one (CPU, Inductor's C++ backend).

Select these tests with `-m compile` (or leave them out with `-m 'not compile'`): each one
compiles a small graph and costs seconds.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters
from torch.utils._pytree import tree_leaves

from ropelib import (
    AxialRoPE,
    ComRoPEAP,
    HDDRoPE,
    RotaryEmbedding,
    RotaryValues,
    XPos,
    apply_rope,
)

pytestmark = pytest.mark.compile

B, H, D, C = 2, 3, 16, 24
# lengths that grow within one cos/sin cache (the first call builds it for 16 positions) and
# coincide with no other size, so that dynamo's duck sizing cannot tie them to one
LENGTHS = (9, 13, 15)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compile_and_compare(fn, make_inputs, lengths=LENGTHS, backend="inductor", atol=1e-5):
    """Compile `fn` (fullgraph, dynamic shapes), call it at every length and compare with
    eager; return the number of graphs dynamo captured (1: no recompilation)."""
    counters.clear()
    compiled = torch.compile(fn, backend=backend, fullgraph=True, dynamic=True)
    for T in lengths:
        inputs = make_inputs(T)
        got, expected = compiled(*inputs), fn(*inputs)
        leaves = zip(tree_leaves(got), tree_leaves(expected), strict=True)
        for g, e in leaves:
            torch.testing.assert_close(g, e, atol=atol, rtol=1e-5, msg=f"T = {T}")
    assert not counters["graph_break"], dict(counters["graph_break"])
    return counters["stats"]["unique_graphs"]


def heads(T: int, n: int = 2, generator_seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(generator_seed + T)
    return tuple(torch.randn(B, H, T, D, generator=generator) for _ in range(n))


def test_apply_rope_compiles_once_for_both_pairings_partial_rotary_and_offsets():
    def rotations(x: torch.Tensor, positions: torch.Tensor):
        return (
            apply_rope(x),
            apply_rope(x, interleaved=False),
            apply_rope(x, rotary_dim=8, offset=3),
            apply_rope(x, interleaved=False, rotary_dim=8, offset=3),
            apply_rope(x, positions),  # fractional positions
            apply_rope(x.transpose(1, 2), layout="bthd"),
        )

    def inputs(T: int):
        (x,) = heads(T, 1)
        return x, torch.arange(T) * 0.5 + 100.0

    assert compile_and_compare(rotations, inputs) == 1


def test_apply_rope_backward_compiles_and_matches_eager():
    """Training under compile: the gradients of both pairings equal eager's."""

    def rotations(x: torch.Tensor):
        return apply_rope(x), apply_rope(x, interleaved=False, rotary_dim=8, offset=3)

    compiled = torch.compile(rotations, fullgraph=True, dynamic=True)
    for T in LENGTHS[:2]:
        (x,) = heads(T, 1)
        weights = torch.randn(2, *x.shape, generator=torch.Generator().manual_seed(T))
        grads = []
        for fn in (compiled, rotations):
            leaf = x.clone().requires_grad_()
            outputs = fn(leaf)
            sum((w * out).sum() for w, out in zip(weights, outputs, strict=True)).backward()
            grads.append(leaf.grad)
        torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)


def test_apply_rope_has_no_graph_break_by_explain():
    """`torch._dynamo.explain` agrees: one graph, no break, on the default interleaved path."""
    (x,) = heads(9, 1)
    explanation = torch._dynamo.explain(lambda t: apply_rope(t, offset=5))(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize("interleaved", [True, False], ids=["interleaved", "half-split"])
def test_rotary_embedding_compiles_once_while_decoding(interleaved):
    """Prefill then decode steps (Tq = 1 < Tk) with the module's cache; no recompilation."""
    rope = RotaryEmbedding(D, interleaved=interleaved)

    def step(q, k, offset: int):
        return rope.rotate_queries_and_keys(q, k, offset=offset)

    def inputs(T: int):
        q, k = heads(T)
        return q[:, :, -1:], k, 2  # one query, T keys, two tokens already evicted

    frames = compile_and_compare(step, inputs)
    assert frames == 1
    # and the compiled module still equals apply_rope, which it caches for
    q, k = heads(13)
    q_rot, k_rot = torch.compile(rope.rotate_queries_and_keys, fullgraph=True)(q, k)
    torch.testing.assert_close(q_rot, apply_rope(q, interleaved=interleaved))
    torch.testing.assert_close(k_rot, apply_rope(k, interleaved=interleaved))


VARIANTS = {
    "rove": lambda: RotaryValues(D),
    "axial": lambda: AxialRoPE(D),
    "comrope-ap": lambda: ComRoPEAP(D, n_heads=H, block_dim=4),
    "hdd-b2": lambda: HDDRoPE(D, n_heads=H, d_model=C, block_dim=2),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_rotations_compile_once(name):
    torch.manual_seed(0)
    module = VARIANTS[name]()
    if name == "comrope-ap":  # away from the identity basis, so the generators matter
        with torch.no_grad():
            module.basis_generator.normal_(std=0.3)

    def rotate(q, k, v, x):
        if isinstance(module, HDDRoPE):
            return module.rotate_queries_and_keys(q, k, x)
        q, k = module.rotate_queries_and_keys(q, k)
        if isinstance(module, RotaryValues):
            return q, k, module.rotate_values(v), module.unrotate_output(v)
        return q, k

    def inputs(T: int):
        x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(T))
        return (*heads(T, 3), x)

    assert compile_and_compare(rotate, inputs) == 1


def test_xpos_compiles_without_graph_break():
    """The overflow check reads the scales, so it runs eagerly only; the graph is whole."""
    xpos = XPos(D)
    graphs = compile_and_compare(
        lambda q, k: xpos.rotate_queries_and_keys(q, k), heads, backend="eager"
    )
    assert graphs == 1


@pytest.mark.xfail(
    strict=True,
    reason="the associative scan (ropelib/scan.py) recurses on T in Python: HDD-RoPE with "
    "block_dim >= 4 recompiles once per power-of-two band of lengths",
)
def test_hdd_block_scan_compiles_once():
    hdd = HDDRoPE(D, n_heads=H, d_model=C, block_dim=8)

    def inputs(T: int):
        x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(T))
        return (*heads(T), x)

    frames = compile_and_compare(
        lambda q, k, x: hdd.rotate_queries_and_keys(q, k, x), inputs, (9, 13), "eager"
    )
    assert frames == 1, f"{frames} graphs for lengths 9 and 13"
