"""The associative scan and HDD-RoPE (the chapter *HDD-RoPE: data-dependent rotations*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ropelib.schemes  # noqa: F401  (registers the GPT's position schemes)
from ropelib.hdd import (
    HDDRoPE,
    increment_matrices,
    quaternion_exp,
    quaternion_product,
    skew_from_parameters,
    so4_quaternion_parts,
)
from ropelib.model import GPT, ConfigError, GPTConfig, LayerCache
from ropelib.rope import apply_rope
from ropelib.scan import associative_scan, prefix_scan, sequential_scan

ROOT = Path(__file__).resolve().parent.parent
FORMS = [(2, "exp"), (2, "cayley"), (4, "exp"), (4, "cayley"), (6, "exp"), (8, "cayley")]


def rotations(shape, b, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    A = torch.randn(*shape, b, b, generator=generator, dtype=torch.float64)
    return torch.matrix_exp(A - A.transpose(-1, -2)).to(dtype)


def data_dependent(module: HDDRoPE, std: float = 0.3, seed: int = 0) -> HDDRoPE:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.increments.weight.copy_(
            torch.randn(module.increments.weight.shape, generator=generator) * std
        )
    return module


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
    with pytest.raises(ValueError, match=match):
        sequential_scan(matrices, dim=dim)


@pytest.mark.parametrize("b, map_", [(2, "exp"), (4, "exp"), (4, "cayley"), (6, "cayley")])
def test_increments_are_rotations(b, map_):
    params = torch.randn(10, b * (b - 1) // 2, dtype=torch.float64)
    M = increment_matrices(params, b, map_)
    eye = torch.eye(b, dtype=torch.float64)
    torch.testing.assert_close(M.transpose(-1, -2) @ M, eye.expand_as(M))
    assert torch.allclose(torch.linalg.det(M), torch.ones(10, dtype=torch.float64))
    A = skew_from_parameters(params, b)
    torch.testing.assert_close(A, -A.transpose(-1, -2))


def test_increment_matrices_rejects_an_unknown_map():
    with pytest.raises(ValueError, match="map"):
        increment_matrices(torch.zeros(3, 1), 2, "qr")


@pytest.mark.parametrize("b, map_", FORMS)
def test_untrained_module_is_rope(b, map_):
    """Zero increment weights: token t is RoPE's position t + 1 (a shift no score sees)."""
    torch.manual_seed(0)
    hdd = HDDRoPE(24, n_heads=3, d_model=20, block_dim=b, map=map_)
    q, k, x = torch.randn(2, 3, 9, 24), torch.randn(2, 3, 9, 24), torch.randn(2, 9, 20)
    q1, k1, _ = hdd.rotate_queries_and_keys(q, k, x)
    torch.testing.assert_close(q1, apply_rope(q, offset=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k1, apply_rope(k, offset=1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("b, map_", FORMS)
@pytest.mark.parametrize("T", [1, 5, 17, 64])
def test_fast_rotations_equal_the_matrix_scan(b, map_, T):
    """The angle (b=2) and quaternion (b=4) forms equal the scan of increment matrices."""
    torch.manual_seed(T)
    hdd = data_dependent(HDDRoPE(24, n_heads=2, d_model=32, block_dim=b, map=map_), 0.5)
    x, qk = torch.randn(3, T, 32), torch.randn(3, 2, T, 24)
    state_fast = state_ref = None
    for _ in range(2):  # the second call continues from the first one's state
        fast, _, state_fast = hdd.rotate_queries_and_keys(qk, qk, x, state_fast)
        prefix, state_ref = hdd.prefix_rotations(x, state_ref)
        reference = (prefix @ qk.unflatten(-1, (-1, b))[..., None]).squeeze(-1).flatten(-2)
        torch.testing.assert_close(fast, reference, atol=3e-5, rtol=1e-5)


@pytest.mark.parametrize("b, map_", FORMS)
@pytest.mark.parametrize("layout", ["bhtd", "bthd"])
def test_decoding_token_by_token_with_the_state_equals_the_full_computation(b, map_, layout):
    torch.manual_seed(1)
    hdd = data_dependent(HDDRoPE(24, n_heads=2, d_model=16, block_dim=b, map=map_))
    hdd.layout = layout
    B, T = 2, 23
    shape = (B, 2, T, 24) if layout == "bhtd" else (B, T, 2, 24)
    q, k, x = torch.randn(shape), torch.randn(shape), torch.randn(B, T, 16)
    full_q, full_k, full_state = hdd.rotate_queries_and_keys(q, k, x)
    time = 2 if layout == "bhtd" else 1
    state, pieces_q, pieces_k = None, [], []
    for start, stop in [(0, 1), (1, 6), (6, 7), (7, 23)]:  # single tokens and chunks
        part = [t.narrow(time, start, stop - start) for t in (q, k)]
        q_t, k_t, state = hdd.rotate_queries_and_keys(*part, x[:, start:stop], state)
        pieces_q.append(q_t)
        pieces_k.append(k_t)
        assert state.shape == hdd.state_shape(B)
    torch.testing.assert_close(torch.cat(pieces_q, time), full_q, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.cat(pieces_k, time), full_k, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, full_state, atol=1e-4, rtol=1e-4)


def test_layouts_agree():
    torch.manual_seed(2)
    a = data_dependent(HDDRoPE(16, n_heads=2, d_model=8, block_dim=4))
    b = HDDRoPE(16, n_heads=2, d_model=8, block_dim=4, layout="bthd")
    b.load_state_dict(a.state_dict())
    q, x = torch.randn(2, 2, 11, 16), torch.randn(2, 11, 8)
    qa, ka, _ = a.rotate_queries_and_keys(q, q, x)
    qb, kb, _ = b.rotate_queries_and_keys(q.transpose(1, 2), q.transpose(1, 2), x)
    torch.testing.assert_close(qb.transpose(1, 2), qa)


def test_module_keeps_the_dtype_and_trains_under_bf16_autocast():
    hdd = data_dependent(HDDRoPE(16, n_heads=2, d_model=8, block_dim=4))
    q = torch.randn(2, 2, 7, 16, dtype=torch.bfloat16, requires_grad=True)
    x = torch.randn(2, 7, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q1, k1, state = hdd.rotate_queries_and_keys(q, q, x)
    assert q1.dtype == torch.bfloat16 and state.dtype == torch.float32
    (q1.float().square().sum() + k1.float().sum()).backward()
    assert torch.isfinite(hdd.increments.weight.grad).all() and q.grad is not None


def test_no_weight_decay_names_its_own_parameters():
    hdd = HDDRoPE(16, n_heads=2, d_model=8)
    assert hdd.no_weight_decay() == set(dict(hdd.named_parameters()))
    assert hdd.no_weight_decay() == {"increments.weight", "increments.bias"}


def test_reset_parameters_returns_to_rope():
    hdd = data_dependent(HDDRoPE(16, n_heads=2, d_model=8, block_dim=4))
    q, x = torch.randn(1, 2, 5, 16), torch.randn(1, 5, 8)
    assert not torch.allclose(hdd.rotate_queries_and_keys(q, q, x)[0], apply_rope(q, offset=1))
    hdd.reset_parameters()
    q1 = hdd.rotate_queries_and_keys(q, q, x)[0]
    torch.testing.assert_close(q1, apply_rope(q, offset=1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"block_dim": 3}, "block_dim"),
        ({"block_dim": 32}, "block_dim"),
        ({"block_dim": True}, "block_dim"),
        ({"map": "qr"}, "map"),
        ({"base": 1.0}, "base"),
        ({"base": float("nan")}, "base"),
        ({"layout": "bdht"}, "layout"),
        ({"n_heads": 0}, "n_heads"),
        ({"d_model": 2.5}, "d_model"),
    ],
)
def test_module_bad_options(options, match):
    arguments = {"n_heads": 2, "d_model": 8, **options}
    with pytest.raises(ValueError, match=f"^{match}"):
        HDDRoPE(16, **arguments)


def test_module_bad_inputs():
    hdd = HDDRoPE(16, n_heads=2, d_model=8, block_dim=4)
    q, x = torch.randn(2, 2, 5, 16), torch.randn(2, 5, 8)
    state = hdd.rotate_queries_and_keys(q, q, x)[2]
    cases = [
        ((q[0], q, x, None), "^q must be a 4-D tensor"),
        ((q[..., :8], q, x, None), "^q must have 2 heads"),
        ((q, q[:, :, :3], x, None), "^k must have q's shape"),
        ((q, q, x[:, :4], None), r"^x must be the layer input \[B, T, d_model\] = \[2, 5, 8\]"),
        ((q, q, "x", None), "^x must"),
        ((q, q, x, state[:1]), "^state must be one this module returned"),
        ((q, q, x, {"hdd": state}), "^state must"),
    ]
    for arguments, match in cases:
        with pytest.raises(ValueError, match=match):
            hdd.rotate_queries_and_keys(*arguments)


@pytest.mark.parametrize(
    "options", [{"block_dim": 2}, {"block_dim": 4}, {"block_dim": 4, "map": "cayley"}, {}]
)
def test_hdd_model_decodes_with_cache_and_trains_in_bf16(options):
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=40, pe="hdd", pe_options=options)
    )
    for block in model.transformer.h:
        data_dependent(block.attn.pe.hdd, 0.2)
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


def test_untrained_hdd_model_is_the_rope_model():
    shape = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=50)
    torch.manual_seed(0)
    rope = GPT(GPTConfig(pe="rope", **shape)).eval()
    idx = torch.randint(0, 50, (2, 20))
    for options in ({"block_dim": 2}, {"block_dim": 4}, {"block_dim": 4, "map": "cayley"}):
        hdd = GPT(GPTConfig(pe="hdd", pe_options=options, **shape)).eval()
        missing, unexpected = hdd.load_state_dict(rope.state_dict(), strict=False)
        assert not unexpected and all(".pe.hdd.increments." in name for name in missing)
        torch.testing.assert_close(hdd(idx)[0], rope(idx)[0], atol=1e-4, rtol=1e-4)


def test_gpt_adapter_names_its_increments_for_no_weight_decay():
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=40, pe="hdd"))
    named = dict(model.named_parameters())
    exempt = set()
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            exempt |= {f"{prefix}.{name}" if prefix else name for name in module.no_weight_decay()}
    increments = {name for name in named if ".increments." in name}
    assert len(increments) == 4 and increments <= exempt and exempt <= set(named)
    assert model.transformer.pe.no_weight_decay() == set()  # the model-level instance


@pytest.mark.parametrize(
    "options, match",
    [
        ({"block_dim": 3}, "block_dim"),
        ({"block_dim": 32}, "block_dim"),
        ({"map": "qr"}, "map"),
        ({"block_size": 4}, "block_dim"),  # the old name of the option
        ({"layout": "bthd"}, "layout"),
    ],
)
def test_hdd_bad_options(options, match):
    with pytest.raises(ConfigError, match=f"^pe_options: .*{match}"):
        GPTConfig(n_layer=1, n_head=2, n_embd=32, pe="hdd", pe_options=options)


def test_so4_quaternion_parts_reconstruct_the_generator():
    from ropelib.hdd import _multiplication_matrices

    params = torch.randn(50, 6, dtype=torch.float64)
    u, v = so4_quaternion_parts(params)
    left, right = _multiplication_matrices()
    rebuilt = torch.einsum("na,aij->nij", u, left) + torch.einsum("na,aij->nij", v, right)
    torch.testing.assert_close(rebuilt, skew_from_parameters(params, 4))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prefix_scan(torch.tensor(1.0), torch.mul), "x"),
        (lambda: prefix_scan(torch.ones(3, 2), torch.mul, 2), "dim"),
        (lambda: quaternion_product(torch.ones(3), torch.ones(4)), "4"),
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


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 300), b=st.sampled_from([3, 4]), seed=st.integers(0, 2**16))
def test_length_agnostic_scan_equals_the_loop_forward_and_backward(T, b, seed):
    """The scan compiled graphs use with a dynamic length (run eagerly here) is the loop,
    and so are its gradients, on both sides of every block boundary."""
    from ropelib.scan import _length_agnostic_scan

    M = rotations((T, 2), b, seed=seed).requires_grad_()
    weights = torch.randn(T, 2, b, b, generator=torch.Generator().manual_seed(seed))
    got = _length_agnostic_scan(M, torch.matmul)
    (grad,) = torch.autograd.grad((got * weights).sum(), M)
    M64 = M.detach().double().requires_grad_()  # the reference: the loop in float64
    expected = sequential_scan(M64, dim=0)
    (expected_grad,) = torch.autograd.grad((expected * weights.double()).sum(), M64)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    # a gradient sums over the up to T outputs after it: float32 rounding scales with the largest
    scale = expected_grad.abs().max().item()
    torch.testing.assert_close(grad.double(), expected_grad, atol=1e-5 * scale, rtol=0)


def test_length_agnostic_scan_keeps_the_order_of_the_factors():
    from ropelib.scan import _length_agnostic_scan

    M = rotations((40,), 3)
    out = _length_agnostic_scan(M, torch.matmul)
    assert not torch.allclose(out, _length_agnostic_scan(M, lambda a, b: b @ a), atol=1e-3)
    torch.testing.assert_close(out, sequential_scan(M, dim=0), atol=1e-5, rtol=0)


def test_tokens_to_reach():
    from ropelib.experiments.hdd import tokens_to_reach

    history = [
        {"kind": "eval", "iter": 0, "val_loss": {"1x": 5.0}},
        {"kind": "train", "iter": 5, "loss": 1.0},  # training losses do not count
        {"kind": "eval", "iter": 10, "val_loss": {"1x": 3.0}},
    ]
    record = {"config": {"batch_size": 2, "grad_accum": 3, "block_size": 8}, "history": history}
    assert tokens_to_reach(record, 5.0) == 0
    assert tokens_to_reach(record, 4.0) == 10 * 2 * 3 * 8
    assert tokens_to_reach(record, 1.0) is None


def test_hdd_experiments_use_block_dim_and_the_stored_records_build():
    from ropelib.experiments.runner import EXPERIMENTS

    configs = EXPERIMENTS["hdd"].configs(True)
    assert set(configs) == {"rope", "xpos", "hdd b=2", "hdd b=4"}
    assert configs["hdd b=4"].pe_options == {"block_dim": 4}
    for path in sorted((ROOT / "results" / "hdd").glob("hdd *.json")):
        config = json.loads(path.read_text())["config"]
        assert "block_size" not in config["pe_options"]
        GPTConfig(
            n_layer=config["n_layer"],
            n_head=config["n_head"],
            n_embd=config["n_embd"],
            pe=config["pe"],
            pe_options=config["pe_options"],
        )


def test_the_trainer_exempts_the_increment_weights_from_weight_decay():
    from ropelib.train.optim import parameter_groups

    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=40, pe="hdd"))
    decay, keep = parameter_groups(model, 0.1)
    increments = [p for n, p in model.named_parameters() if ".increments." in n]
    assert len(increments) == 4
    assert not any(p is q for p in increments for q in decay["params"])
    assert all(any(p is q for q in keep["params"]) for p in increments)
    assert decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0


def test_quick_hdd_run_trains_saves_and_loads(tmp_path):
    """The hdd experiment's quick b = 4 run, end to end: train, checkpoint, load."""
    import dataclasses
    import math

    from ropelib.data import load_text, prepare_dataset
    from ropelib.experiments.runner import EXPERIMENTS
    from ropelib.train import load_model, train

    corpus = tmp_path / "shakespeare-100k.txt"
    corpus.write_text(load_text("shakespeare")[:100_000])
    prepare_dataset(str(corpus), tokenizer="char", data_dir=tmp_path / "data")
    config = dataclasses.replace(
        EXPERIMENTS["hdd"].configs(True)["hdd b=4"],
        corpus=str(corpus),
        data_dir=str(tmp_path / "data"),
        out_dir=str(tmp_path / "run"),
        progress=False,
        device="cpu",
    )
    metrics = train(config)
    assert math.isfinite(metrics["val_loss"]["1x"])
    model, loaded = load_model(tmp_path / "run")
    assert loaded.pe_options == {"block_dim": 4}
    trained = model.transformer.h[0].attn.pe.hdd.increments.weight
    assert trained.abs().max() > 0  # the increment weights moved away from RoPE's start
