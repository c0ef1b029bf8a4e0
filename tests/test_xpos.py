"""ropelib.xpos (derived in the chapter *A GPT-2 with pluggable position schemes*)."""

from __future__ import annotations

import pytest
import torch

from ropelib.rope import RotaryEmbedding
from ropelib.xpos import XPos, apply_xpos, xpos_centre, xpos_scales, xpos_zeta


def scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return q @ k.transpose(-1, -2)


def random_qk(*shape: int, dtype=torch.float64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, *shape, generator=generator, dtype=dtype).unbind(0)


@pytest.mark.parametrize("interleaved", [True, False])
def test_scores_are_ropes_times_the_decay_of_each_pair(interleaved):
    xpos = XPos(8, interleaved=interleaved)
    rope = RotaryEmbedding(8, interleaved=interleaved)
    q, k = random_qk(1, 1, 6, 8)
    positions = torch.arange(300, 306)
    qx, kx = xpos.rotate_queries_and_keys(q, k, positions)
    qr, kr = rope.rotate_queries_and_keys(q, k, positions)
    pairs = (qr[..., :, None, :] * kr[..., None, :, :]).unflatten(-1, (4, 2)).sum(-1)
    if not interleaved:  # half-split: pair j is (j, j + D/2)
        halves = (qr[..., :, None, :] * kr[..., None, :, :]).unflatten(-1, (2, 4))
        pairs = halves.sum(-2)
    distance = (positions[:, None] - positions[None, :]).double()  # m - n
    decay = xpos_zeta(8)[None, None, :] ** (distance[..., None] / 512.0)
    torch.testing.assert_close(scores(qx, kx), (pairs * decay).sum(-1), rtol=1e-12, atol=0)


def test_centring_leaves_every_score_unchanged():
    xpos = XPos(16)
    q, k = random_qk(2, 3, 10, 16)
    positions = torch.arange(5000, 5010)
    reference = scores(*xpos.rotate_queries_and_keys(q, k, positions, centre=0.0))
    for centre in (None, 5004.5, -3.0, torch.tensor(1234.0)):
        got = scores(*xpos.rotate_queries_and_keys(q, k, positions, centre=centre))
        torch.testing.assert_close(got, reference, rtol=1e-10, atol=0)
    # per-sample positions: each row is centred on its own middle
    rows = torch.stack((positions, positions + 10**6))
    qb, kb = random_qk(2, 1, 10, 16)
    per_row = scores(*xpos.rotate_queries_and_keys(qb, kb, rows))
    for b in range(2):  # each row alone, around any centre, gives the same scores
        alone = xpos.rotate_queries_and_keys(qb[b : b + 1], kb[b : b + 1], positions, centre=0.0)
        torch.testing.assert_close(per_row[b], scores(*alone)[0], rtol=1e-9, atol=0)
    assert xpos_centre(rows).flatten().tolist() == [5004.5, 10**6 + 5004.5]


def test_half_precision_stays_finite_up_to_position_65536():
    """The paper's uncentred scales overflow fp16 near position 4,500; centred ones do not."""
    q, k = random_qk(2, 4, 2048, 64, dtype=torch.float32, seed=1)
    xpos = XPos(64).half()
    far = torch.arange(65_536 - 2048, 65_536)
    q16, k16 = xpos.rotate_queries_and_keys(q.half(), k.half(), far)
    assert q16.dtype == k16.dtype == torch.float16
    assert torch.isfinite(q16).all() and torch.isfinite(k16).all()
    s16 = scores(q16.float(), k16.float())
    assert torch.isfinite(s16).all()
    near = scores(*xpos.rotate_queries_and_keys(q.double(), k.double()))  # positions 0...2047
    assert (s16.double() - near).abs().max() < 2e-3 * near.abs().max()
    with pytest.raises(ValueError, match="overflow"):  # the uncentred form: r = 0
        xpos.rotate_queries_and_keys(q.half(), k.half(), far, centre=0.0)


def test_decoding_one_token_at_a_time_equals_the_full_computation():
    xpos = XPos(8)
    q, k = random_qk(2, 2, 12, 8)
    full_q, full_k = xpos.rotate_queries_and_keys(q, k)
    full = scores(full_q, full_k)
    centre = xpos_centre(torch.arange(1)).item()  # the first step's centre, kept after
    cached = []
    for t in range(12):
        step_q, step_k = xpos.rotate_queries_and_keys(
            q[:, :, t : t + 1], k[:, :, t : t + 1], offset=t, centre=centre
        )
        cached.append(step_k)
        row = scores(step_q, torch.cat(cached, dim=2))[..., 0, :]
        torch.testing.assert_close(row, full[..., t, : t + 1], rtol=1e-10, atol=1e-12)
        # a cache of raw keys: all keys re-rotated with the new query, default centre
        raw_q, raw_k = xpos.rotate_queries_and_keys(q[:, :, t : t + 1], k[:, :, : t + 1])
        raw = scores(raw_q, raw_k)[..., 0, :]
        torch.testing.assert_close(raw, full[..., t, : t + 1], rtol=1e-10, atol=1e-12)


def test_a_cached_step_without_the_shared_centre_is_wrong():
    """Negative control: rotated keys cached under one centre, a query under another."""
    xpos = XPos(8)
    q, k = random_qk(1, 1, 4, 8)
    full = scores(*xpos.rotate_queries_and_keys(q, k))
    _, first_keys = xpos.rotate_queries_and_keys(q[:, :, :3], k[:, :, :3])
    step_q, _ = xpos.rotate_queries_and_keys(q[:, :, 3:], k[:, :, 3:], offset=3)
    row = scores(step_q, first_keys)[..., 0, :]
    assert not torch.allclose(row, full[..., 3, :3], rtol=1e-3)


@pytest.mark.parametrize("interleaved", [True, False])
def test_bthd_layout_is_the_transposed_result(interleaved):
    q, k = random_qk(2, 3, 7, 8)
    bhtd = XPos(8, interleaved=interleaved).rotate_queries_and_keys(q, k, offset=40)
    bthd = XPos(8, interleaved=interleaved, layout="bthd").rotate_queries_and_keys(
        q.transpose(1, 2), k.transpose(1, 2), offset=40
    )
    for a, b in zip(bthd, bhtd, strict=True):
        torch.testing.assert_close(a.transpose(1, 2), b, rtol=1e-12, atol=0)
    rows = torch.stack((torch.arange(7), torch.arange(100, 107)))
    per_row = XPos(8, layout="bthd").rotate_queries_and_keys(
        q.transpose(1, 2), k.transpose(1, 2), rows
    )
    expected = XPos(8).rotate_queries_and_keys(q, k, rows)
    for a, b in zip(per_row, expected, strict=True):
        torch.testing.assert_close(a.transpose(1, 2), b, rtol=1e-12, atol=0)


def test_function_equals_module_and_scales_are_float64():
    q, k = random_qk(1, 2, 5, 8, dtype=torch.float32)
    module = XPos(8, gamma=0.3, scale_base=256.0).rotate_queries_and_keys(q, k, offset=3)
    function = apply_xpos(q, k, offset=3, gamma=0.3, scale_base=256.0)
    for a, b in zip(module, function, strict=True):
        assert torch.equal(a, b) and a.dtype == torch.float32
    table = xpos_scales(torch.arange(4), xpos_zeta(8), 1.5, 512.0)
    assert table.dtype == torch.float64 and table.shape == (4, 8)
    assert XPos(8).to(torch.bfloat16).zeta.dtype == torch.float64


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: XPos(7), "head_dim"),
        (lambda: XPos(8, gamma=0.0), "gamma"),
        (lambda: XPos(8, gamma=float("nan")), "gamma"),
        (lambda: XPos(8, scale_base=-1.0), "scale_base"),
        (lambda: XPos(8, layout="thd"), "layout"),
        (lambda: XPos(8).rotate_queries_and_keys(*random_qk(1, 1, 4, 8), torch.arange(3)), "T = 4"),
    ],
)
def test_bad_input_names_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()
