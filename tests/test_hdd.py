"""The associative scan and HDD-RoPE (notebooks/08_hdd_rope.md)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ropelib.hdd import (
    increment_matrices,
    quaternion_exp,
    quaternion_product,
    skew_from_parameters,
    so4_quaternion_parts,
)
from ropelib.model import GPT, GPTConfig, LayerCache
from ropelib.scan import associative_scan, prefix_scan, sequential_scan


def rotations(shape, b, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    A = torch.randn(*shape, b, b, generator=generator, dtype=torch.float64)
    return torch.matrix_exp(A - A.transpose(-1, -2)).to(dtype)


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 120), b=st.sampled_from([2, 3, 4]), seed=st.integers(0, 2**16))
def test_scan_equals_sequential_product_in_fp32(T, b, seed):
    M = rotations((2, T, 3), b, seed=seed)
    torch.testing.assert_close(
        associative_scan(M, dim=1), sequential_scan(M, dim=1), atol=1e-5, rtol=0
    )


def test_scan_is_ordered_not_commutative():
    M = rotations((5,), 3)
    out = associative_scan(M, dim=0)
    torch.testing.assert_close(out[-1], M[0] @ M[1] @ M[2] @ M[3] @ M[4], atol=1e-6, rtol=0)
    assert not torch.allclose(out[-1], M[4] @ M[3] @ M[2] @ M[1] @ M[0], atol=1e-3)


def test_scan_works_for_general_matrices_and_its_gradient_matches_the_loop():
    M = (torch.randn(9, 3, 3, dtype=torch.float64) * 0.5).requires_grad_()
    weights = torch.randn(9, 3, 3, dtype=torch.float64)
    (associative_scan(M, dim=0) * weights).sum().backward()
    scan_grad = M.grad.clone()
    M.grad = None
    (sequential_scan(M, dim=0) * weights).sum().backward()
    torch.testing.assert_close(scan_grad, M.grad)


@pytest.mark.parametrize(
    "matrices, dim, match",
    [
        (torch.zeros(3, 3), 0, "matrices"),
        (torch.zeros(4, 2, 3), 0, "square"),
        (torch.zeros(4, 3, 3), 5, "out of range"),
        (torch.zeros(4, 3, 3), -1, "matrix dimensions"),
    ],
)
def test_scan_bad_input(matrices, dim, match):
    with pytest.raises(ValueError, match=match):
        associative_scan(matrices, dim=dim)


@pytest.mark.parametrize("b, map_", [(2, "exp"), (4, "exp"), (4, "cayley"), (6, "cayley")])
def test_increments_are_rotations(b, map_):
    params = torch.randn(10, b * (b - 1) // 2, dtype=torch.float64)
    M = increment_matrices(params, b, map_)
    eye = torch.eye(b, dtype=torch.float64)
    torch.testing.assert_close(M.transpose(-1, -2) @ M, eye.expand_as(M))
    assert torch.allclose(torch.linalg.det(M), torch.ones(10, dtype=torch.float64))
    A = skew_from_parameters(params, b)
    torch.testing.assert_close(A, -A.transpose(-1, -2))


@pytest.mark.parametrize(
    "options", [{"block_size": 2}, {"block_size": 4}, {"block_size": 4, "map": "cayley"}]
)
def test_hdd_model_decodes_with_cache_and_trains_in_bf16(options):
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=40, pe="hdd", pe_options=options)
    )
    with torch.no_grad():
        for block in model.transformer.h:
            block.attn.pe.increments.weight.normal_(std=0.2)
    model.eval()
    idx = torch.randint(0, 40, (2, 14))
    logits = model(idx)[0]
    caches = [LayerCache() for _ in model.transformer.h]
    steps = [
        model.lm_head(model.forward_features(idx[:, t : t + 1], start=t, caches=caches))
        for t in range(14)
    ]
    torch.testing.assert_close(torch.cat(steps, 1), logits, atol=1e-5, rtol=1e-5)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(idx, idx)[1]
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "options, match",
    [({"block_size": 3}, "block_size"), ({"block_size": 32}, "block_size"), ({"map": "qr"}, "map")],
)
def test_hdd_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(n_layer=1, n_head=2, n_embd=32, pe="hdd", pe_options=options)


@pytest.mark.parametrize(
    "options", [{"block_size": 2}, {"block_size": 2, "map": "cayley"}, {"block_size": 4}]
)
@pytest.mark.parametrize("T", [1, 5, 17, 64])
def test_fast_rotations_equal_the_matrix_scan(options, T):
    """The angle (b=2) and quaternion (b=4) forms equal the scan of increment matrices."""
    from ropelib.hdd import HDDRoPE

    torch.manual_seed(T)
    scheme = HDDRoPE(GPTConfig(n_layer=1, n_head=2, n_embd=32), 0, **options)
    with torch.no_grad():
        scheme.increments.weight.normal_(std=0.5)
    x, qk = torch.randn(3, T, 32), torch.randn(3, 2, T, 16)
    b = options["block_size"]
    state_fast, state_ref = {}, {}
    for _ in range(2):  # the second call continues from the first one's state
        fast, _ = scheme.rotate(qk, qk, None, x, state_fast)
        prefix = scheme.prefix_rotations(x, state_ref)
        reference = (prefix @ qk.unflatten(-1, (-1, b))[..., None]).squeeze(-1).flatten(-2)
        torch.testing.assert_close(fast, reference, atol=3e-5, rtol=1e-5)


def test_so4_quaternion_parts_reconstruct_the_generator():
    from ropelib.hdd import _multiplication_matrices, so4_quaternion_parts

    params = torch.randn(50, 6, dtype=torch.float64)
    u, v = so4_quaternion_parts(params)
    left, right = _multiplication_matrices()
    rebuilt = torch.einsum("na,aij->nij", u, left) + torch.einsum("na,aij->nij", v, right)
    torch.testing.assert_close(rebuilt, skew_from_parameters(params, 4))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prefix_scan(torch.tensor(1.0), torch.mul), "x"),
        (
            lambda: prefix_scan(torch.ones(3, 2), torch.mul, 2),
            "dim",
        ),
        (
            lambda: quaternion_product(torch.ones(3), torch.ones(4)),
            "4",
        ),
        (lambda: quaternion_exp(torch.ones(2, 4)), "3"),
        (lambda: so4_quaternion_parts(torch.ones(2, 5)), "6"),
    ],
)
def test_scan_and_quaternion_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_prefix_scan_of_quaternions_equals_the_sequential_product():
    q = torch.randn(37, 5, 4, dtype=torch.float64)
    expected = [q[0]]
    for t in range(1, 37):
        expected.append(quaternion_product(expected[-1], q[t]))
    torch.testing.assert_close(prefix_scan(q, quaternion_product), torch.stack(expected))
