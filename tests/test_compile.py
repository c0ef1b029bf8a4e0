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


# lengths within one block of 64 and across blocks, in several of the power-of-two bands at
# which the eager, work-efficient scan changes shape
SCAN_LENGTHS = (9, 13, 15, 31, 33, 64, 100, 130)


def hdd_rotation(block_dim: int, seed: int = 0):
    """HDD-RoPE away from its RoPE start; b = 4 scans quaternions, b = 8 matrices."""
    torch.manual_seed(seed)
    hdd = HDDRoPE(D, n_heads=H, d_model=C, block_dim=block_dim)
    with torch.no_grad():
        hdd.increments.weight.normal_(std=0.3)

    def inputs(T: int):
        x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(T))
        return (*heads(T), x)

    return (lambda q, k, x: hdd.rotate_queries_and_keys(q, k, x)), inputs


@pytest.mark.parametrize("block_dim", [4, 8], ids=["quaternions", "matrices"])
def test_hdd_block_scan_compiles_once(block_dim):
    """One graph for every length: the scan under a dynamic length branches on nothing."""
    rotate, inputs = hdd_rotation(block_dim)
    frames = compile_and_compare(rotate, inputs, SCAN_LENGTHS, "eager")
    assert frames == 1, f"{frames} graphs for lengths {SCAN_LENGTHS}"


def test_hdd_block_scan_under_inductor_equals_eager():
    """Inductor's code for the matrix scan (b = 8) equals eager, one graph for two lengths."""
    rotate, inputs = hdd_rotation(8)
    assert compile_and_compare(rotate, inputs, (13, 33)) == 1


@pytest.mark.parametrize("op", ["matmul", "quaternion"])
def test_dynamic_scan_equals_eager_and_the_loop_forward_and_backward(op):
    """The compiled scan with a dynamic length, the eager (work-efficient) scan and the loop
    agree, values and gradients."""
    from ropelib.hdd import _product_dim1
    from ropelib.scan import associative_scan, prefix_scan, sequential_scan

    def quaternion_loop(x):
        out = [x[0]]
        for t in range(1, x.shape[0]):
            out.append(_product_dim1(out[-1][None], x[t][None])[0])
        return torch.stack(out)

    if op == "matmul":
        scan, loop = (lambda x: associative_scan(x, dim=0)), (lambda x: sequential_scan(x, dim=0))
    else:
        scan, loop = (lambda x: prefix_scan(x, _product_dim1)), quaternion_loop
    compiled = torch.compile(scan, backend="eager", fullgraph=True, dynamic=True)
    counters.clear()
    for T in (9, 17, 65, 100, 200):
        generator = torch.Generator().manual_seed(T)
        if op == "matmul":
            A = torch.randn(T, 3, 4, 4, generator=generator, dtype=torch.float64)
            x = torch.matrix_exp(A - A.transpose(-1, -2)).float()
        else:
            x = torch.nn.functional.normalize(torch.randn(T, 4, 3, generator=generator), dim=1)
        weights = torch.randn(x.shape, generator=generator)
        values, grads = [], []
        for fn, dtype in ((compiled, torch.float32), (scan, torch.float32), (loop, torch.float64)):
            leaf = x.to(dtype, copy=True).requires_grad_()
            out = fn(leaf)
            (out * weights.to(dtype)).sum().backward()
            values.append(out.detach().double())
            grads.append(leaf.grad.double())
        # the reference is the float64 loop; a gradient sums over the up to T outputs that
        # follow its position, so its float32 rounding is measured against the largest one
        scale = grads[2].abs().max().item()
        for got, grad in zip(values[:2], grads[:2], strict=True):
            torch.testing.assert_close(got, values[2], atol=1e-5, rtol=0, msg=f"T = {T}")
            torch.testing.assert_close(grad, grads[2], atol=1e-5 * scale, rtol=0, msg=f"T = {T}")
    assert counters["stats"]["unique_graphs"] == 1


def test_dynamic_scan_refuses_a_length_past_its_bound():
    """The fixed number of rounds covers 2**20 positions; a longer sequence is an error that
    names the bound, not a wrong prefix."""
    from ropelib.scan import prefix_scan

    compiled = torch.compile(lambda x: prefix_scan(x, torch.mul), backend="eager", dynamic=True)
    logs = torch.randn(2**20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    logs = logs * 1e-3  # products of exp(logs) are exp of their running sums, at the bound too
    got = compiled(logs.exp())
    torch.testing.assert_close(got, logs.cumsum(0).exp(), atol=0, rtol=1e-9)
    with pytest.raises(Exception, match=r"at most 2\*\*20 positions"):
        compiled(torch.ones(2**20 + 1))
