"""Properties of ropelib.rope (the chapter *Rotary position embeddings from first principles*)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ropelib import (
    RotaryEmbedding,
    apply_rope,
    apply_rotary,
    half_split_permutation,
    rope_angles,
    rope_frequencies,
)

settings.register_profile("ropelib", max_examples=40, deadline=None)
settings.load_profile("ropelib")

head_dims = st.sampled_from([2, 4, 8, 16, 64, 128])
positions_up_to_2_20 = st.integers(min_value=0, max_value=2**20)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def unit_vectors(seed: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    return (x / x.norm(dim=-1, keepdim=True)).to(dtype)


def rotate_at(x: torch.Tensor, position: int, **kwargs) -> torch.Tensor:
    return apply_rope(x, torch.tensor([position] * x.shape[-2]), **kwargs)


@given(seed=seeds, head_dim=head_dims, position=positions_up_to_2_20)
def test_rotation_preserves_norms(seed, head_dim, position):
    x = unit_vectors(seed, (2, 3, 4, head_dim)) * 7.0
    rotated = rotate_at(x, position)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


@given(
    seed=seeds,
    head_dim=head_dims,
    m=positions_up_to_2_20,
    n=positions_up_to_2_20,
    shift=st.integers(min_value=-(2**19), max_value=2**19),
    interleaved=st.booleans(),
)
def test_scores_depend_only_on_relative_position(seed, head_dim, m, n, shift, interleaved):
    """<R(m)q, R(n)k> = <R(m+s)q, R(n+s)k> to 1e-5 in fp32 for positions up to 2**20."""
    shift = max(shift, -min(m, n))  # keep positions non-negative
    q = unit_vectors(seed, (1, 1, 1, head_dim))
    k = unit_vectors(seed + 1, (1, 1, 1, head_dim))

    def score(m_: int, n_: int) -> float:
        rotated_q = rotate_at(q, m_, interleaved=interleaved)
        return (rotated_q * rotate_at(k, n_, interleaved=interleaved)).sum().item()

    assert abs(score(m, n) - score(m + shift, n + shift)) <= 1e-5


@given(seed=seeds, head_dim=head_dims, offset=positions_up_to_2_20, interleaved=st.booleans())
def test_offset_equals_explicit_positions(seed, head_dim, offset, interleaved):
    x = unit_vectors(seed, (2, 2, 5, head_dim))
    explicit = apply_rope(x, torch.arange(offset, offset + 5), interleaved=interleaved)
    assert torch.equal(apply_rope(x, offset=offset, interleaved=interleaved), explicit)
    module = RotaryEmbedding(head_dim, interleaved=interleaved)
    torch.testing.assert_close(module(x, offset=offset), explicit, atol=1e-6, rtol=0)


@given(seed=seeds, head_dim=head_dims, offset=positions_up_to_2_20)
def test_pairings_agree_after_permutation(seed, head_dim, offset):
    x = unit_vectors(seed, (2, 3, 4, head_dim))
    perm = half_split_permutation(head_dim)
    half = apply_rope(x, offset=offset, interleaved=False)
    interleaved = apply_rope(x[..., perm], offset=offset)
    torch.testing.assert_close(half[..., perm], interleaved, atol=1e-6, rtol=0)
    torch.testing.assert_close(interleaved[..., perm.argsort()], half, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("interleaved", [True, False])
def test_half_precision_is_rotated_in_fp32_and_returned_in_its_dtype(dtype, interleaved):
    x = unit_vectors(0, (2, 4, 64, 64), dtype=dtype)
    out = apply_rope(x, offset=50_000, interleaved=interleaved)
    assert out.dtype == dtype
    # Rotating in fp32 and rounding once: the result is the fp32 rotation rounded to `dtype`.
    reference = apply_rope(x.float(), offset=50_000, interleaved=interleaved).to(dtype)
    assert torch.equal(out, reference)
    module_out = RotaryEmbedding(64, interleaved=interleaved).to(dtype)(x, offset=50_000)
    assert module_out.dtype == dtype
    torch.testing.assert_close(module_out.float(), reference.float(), atol=1e-2, rtol=0)


def test_float64_is_rotated_in_float64():
    x = unit_vectors(3, (1, 1, 3, 8), dtype=torch.float64)
    out = apply_rope(x, offset=10**6)
    assert out.dtype == torch.float64
    angles = rope_angles(torch.arange(10**6, 10**6 + 3), rope_frequencies(8))
    rotation = torch.polar(torch.ones_like(angles), angles)
    z = torch.view_as_complex(x.unflatten(-1, (-1, 2))) * rotation
    torch.testing.assert_close(out, torch.view_as_real(z).flatten(-2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("interleaved", [True, False])
def test_rotary_dim_rotates_a_prefix_and_passes_the_rest(interleaved):
    x = unit_vectors(1, (2, 2, 6, 10))
    out = apply_rope(x, offset=3, rotary_dim=6, interleaved=interleaved)
    assert torch.equal(out[..., 6:], x[..., 6:])
    expected = apply_rope(x[..., :6].contiguous(), offset=3, interleaved=interleaved)
    torch.testing.assert_close(out[..., :6], expected, atol=1e-6, rtol=0)
    odd_head = unit_vectors(1, (1, 2, 3, 9))  # an odd head_dim is fine with an even rotary_dim
    assert torch.equal(apply_rope(odd_head, rotary_dim=8)[..., 8:], odd_head[..., 8:])


@pytest.mark.parametrize("interleaved", [True, False])
def test_gradient_is_the_transposed_rotation(interleaved):
    x = unit_vectors(2, (1, 2, 5, 16), dtype=torch.float64).requires_grad_()
    rotate = lambda t: apply_rope(t, offset=7, interleaved=interleaved)  # noqa: E731
    assert torch.autograd.gradcheck(rotate, (x,))
    # and the gradient of a rotation is the inverse rotation of the incoming gradient
    grad = unit_vectors(3, (1, 2, 5, 16), dtype=torch.float64)
    (apply_rope(x, offset=7, interleaved=interleaved) * grad).sum().backward()
    angles = rope_angles(torch.arange(7, 12), rope_frequencies(16))
    inverse = apply_rotary(grad, angles.cos(), -angles.sin(), interleaved=interleaved)
    torch.testing.assert_close(x.grad, inverse, atol=1e-12, rtol=0)


def test_learned_angles_receive_gradients_in_both_pairings():
    for interleaved in (True, False):
        x = unit_vectors(4, (1, 1, 3, 8))
        angles = torch.rand(3, 4, requires_grad=True)
        apply_rotary(x, angles.cos(), angles.sin(), interleaved=interleaved).sum().backward()
        assert angles.grad is not None and angles.grad.abs().sum() > 0


def test_batched_positions():
    x = unit_vectors(5, (2, 3, 4, 8))
    positions = torch.tensor([[0, 1, 2, 3], [10, 11, 12, 13]])
    out = apply_rope(x, positions)
    torch.testing.assert_close(out[0], apply_rope(x[:1], offset=0)[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], apply_rope(x[1:], offset=10)[0], atol=1e-6, rtol=0)


def test_non_contiguous_inputs_from_a_fused_projection():
    qkv = torch.randn(2, 7, 3, 4, 16)  # [B, T, 3, H, D] as a fused projection produces it
    q = qkv[:, :, 0].transpose(1, 2)  # [B, H, T, D], non-contiguous
    assert not q.is_contiguous()
    for interleaved in (True, False):
        expected = apply_rope(q.contiguous(), interleaved=interleaved)
        torch.testing.assert_close(apply_rope(q, interleaved=interleaved), expected)


def test_frequencies():
    freqs = rope_frequencies(8, base=100.0)
    assert freqs.dtype == torch.float64
    assert freqs.tolist() == pytest.approx([100 ** (-2 * j / 8) for j in range(4)], rel=1e-15)


def test_cache_grows_follows_dtype_and_is_not_state():
    rope = RotaryEmbedding(16)
    x = torch.randn(1, 1, 5, 16)
    rope(x)
    first = rope._cache[(torch.device("cpu"), torch.float32)][0].shape[0]
    rope(torch.randn(1, 1, 100, 16), offset=40)
    grown = rope._cache[(torch.device("cpu"), torch.float32)][0].shape[0]
    assert first >= 5 and grown >= 140 and grown > first
    rope(x.double())
    assert (torch.device("cpu"), torch.float64) in rope._cache
    rope.to(torch.bfloat16)
    assert rope._cache == {} and rope.frequencies.dtype == torch.float64
    assert rope.state_dict() == {} and list(rope.buffers()) == []
    # positions beyond the cache limit are computed directly, not cached
    small = RotaryEmbedding(16, cache_limit=64)
    torch.testing.assert_close(small(x, offset=1000), apply_rope(x, offset=1000))
    assert all(cos.shape[0] <= 64 for cos, _ in small._cache.values())


def test_rotate_queries_and_keys_for_a_kv_cache():
    rope = RotaryEmbedding(8)
    q, k = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    full_q, full_k = rope.rotate_queries_and_keys(q, k)
    last_q, all_k = rope.rotate_queries_and_keys(q[:, :, -1:], k)
    torch.testing.assert_close(last_q, full_q[:, :, -1:])
    torch.testing.assert_close(all_k, full_k)
    for t in range(6):  # token by token, as a decoder with a KV cache does
        q_t, k_t = q[:, :, t : t + 1], k[:, :, t : t + 1]
        step_q, step_k = rope.rotate_queries_and_keys(q_t, k_t, offset=t)
        torch.testing.assert_close(step_q, full_q[:, :, t : t + 1])
        torch.testing.assert_close(step_k, full_k[:, :, t : t + 1])


Q5, K4 = torch.randn(1, 1, 5, 8), torch.randn(1, 1, 4, 8)


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: apply_rope(torch.randn(1, 1, 4, 7)), "head_dim"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), rotary_dim=10), "rotary_dim"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), rotary_dim=3), "rotary_dim"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), rotary_dim=0), "rotary_dim"),
        (lambda: apply_rope(torch.randn(4, 8)), "rank"),
        (lambda: apply_rope(torch.randn(1, 1, 1, 4, 8)), "rank"),
        (
            lambda: apply_rope(torch.randn(1, 1, 4, 8), torch.ones(4, dtype=torch.cfloat)),
            "positions",
        ),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), torch.ones(4, dtype=torch.bool)), "positions"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), torch.arange(5)), "positions"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), torch.arange(4), offset=2), "offset"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), offset=-1), "offset"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), offset=1.5), "offset"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), base=1.0), "base"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), base=math.inf), "base"),
        (lambda: apply_rope(torch.randint(0, 9, (1, 1, 4, 8))), "floating-point"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), frequencies=torch.ones(3)), "frequencies"),
        (lambda: rope_frequencies(7), "head_dim"),
        (lambda: RotaryEmbedding(7), "head_dim"),
        (lambda: RotaryEmbedding(8)(torch.randn(1, 1, 4, 16)), "head_dim"),
        (lambda: RotaryEmbedding(8, rotary_dim=12), "rotary_dim"),
        (lambda: RotaryEmbedding(8).rotate_queries_and_keys(Q5, K4), "q"),
        (lambda: RotaryEmbedding(8, layout="bhdt"), "layout"),
        (lambda: apply_rope(torch.randn(1, 1, 4, 8), layout="BTHD"), "layout"),
        (lambda: RotaryEmbedding(8).rotate_queries_and_keys(K4, K4, torch.arange(5)), "T = 4"),
        (lambda: half_split_permutation(5), "head_dim"),
    ],
)
def test_bad_input_names_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="torch.Tensor"):
        apply_rope([[1.0, 2.0]])


def test_a_bthd_tensor_passed_as_bhtd_is_refused_naming_both_lengths():
    """[B, T, H, D] read as [B, H, T, D] used to be rotated along its head axis, silently."""
    x = torch.randn(2, 16, 4, 8)  # [B, T=16, H=4, D]
    with pytest.raises(ValueError, match=r"T = 4 entries.*got shape \(16,\)"):
        apply_rope(x, torch.arange(16))
    with pytest.raises(ValueError, match=r"T = 4 entries.*got shape \(16,\)"):
        RotaryEmbedding(8).rotate_queries_and_keys(x, x, torch.arange(16))
    with pytest.raises(ValueError, match=r"T = 16 entries.*got shape \(4,\)"):
        apply_rope(x, torch.arange(4), layout="bthd")


@given(seed=seeds, head_dim=head_dims, offset=positions_up_to_2_20, interleaved=st.booleans())
def test_bthd_equals_the_transposed_bhtd_result(seed, head_dim, offset, interleaved):
    x = unit_vectors(seed, (2, 5, 3, head_dim))  # [B, T, H, D]
    as_bhtd = x.transpose(1, 2)
    expected = apply_rope(as_bhtd, offset=offset, interleaved=interleaved).transpose(1, 2)
    out = apply_rope(x, offset=offset, interleaved=interleaved, layout="bthd")
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    positions = torch.arange(offset, offset + 5)
    batched = positions[None].expand(2, 5)
    for p in (positions, batched):
        out = apply_rope(x, p, interleaved=interleaved, layout="bthd")
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    rope = RotaryEmbedding(head_dim, interleaved=interleaved, layout="bthd")
    q, k = rope.rotate_queries_and_keys(x, x, offset=offset)
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0)
    step_q, _ = rope.rotate_queries_and_keys(x[:, -1:], x, offset=offset)  # decoding
    torch.testing.assert_close(step_q, expected[:, -1:], atol=1e-6, rtol=0)


def test_apply_rotary_moves_bhtd_tables_to_the_bthd_layout():
    x = torch.randn(2, 4, 3, 8)  # [B, H, T, D]
    angles = torch.rand(4, 3, 4)  # per-head angles [H, T, D/2]
    expected = apply_rotary(x, angles.cos(), angles.sin())
    out = apply_rotary(x.transpose(1, 2), angles.cos(), angles.sin(), layout="bthd")
    torch.testing.assert_close(out, expected.transpose(1, 2))


def test_positions_are_the_second_positional_argument():
    rope = RotaryEmbedding(8)
    q = torch.randn(1, 2, 4, 8)
    at = torch.arange(10, 14)
    rotated_q, rotated_k = rope.rotate_queries_and_keys(q, q, at)
    assert torch.equal(rotated_q, rope(q, at)) and torch.equal(rotated_k, rope(q, at))


def test_fractional_positions_are_positions_on_a_finer_grid():
    """Position p/2 at frequency θ is position p at θ/2 (what position interpolation uses)."""
    x = unit_vectors(6, (1, 2, 6, 16), dtype=torch.float64)
    halved = apply_rope(x, torch.arange(6) / 2)
    slower = apply_rope(x, torch.arange(6), frequencies=rope_frequencies(16) / 2)
    torch.testing.assert_close(halved, slower, atol=1e-12, rtol=0)
    rope = RotaryEmbedding(16)
    torch.testing.assert_close(rope(x, torch.arange(6) / 2), halved, atol=1e-12, rtol=0)


def test_cos_sin_table_of_strided_angles_matches_its_fake_under_compile():
    """The opaque cos/sin op returns contiguous tables, as its fake kernel declares, so a
    compiled graph that passes it a transposed angle table runs and agrees with eager."""
    from ropelib.rope import _cos_sin_table

    angles = torch.randn(8, 6, dtype=torch.float64).t()
    compiled = torch.compile(lambda a: _cos_sin_table(a, torch.float32), fullgraph=True)
    cos, sin = compiled(angles)
    torch.testing.assert_close(cos, angles.cos().float())
    torch.testing.assert_close(sin, angles.sin().float())
    torch.library.opcheck(_cos_sin_table, (angles, torch.float32))
