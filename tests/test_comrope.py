"""ComRoPE, LieRE, RoPE-Mixed and axial RoPE (the chapter *The RoPE Equation and ComRoPE*)."""

from __future__ import annotations

import json

import pytest
import torch

import ropelib.schemes  # noqa: F401  (registers the adapters)
from ropelib.comrope import (
    AxialRoPE,
    ComRoPEAP,
    ComRoPELD,
    LieRE,
    RoPEMixed,
    _RotateByLearnedAngles,
    axial_frequencies,
    skew,
    skew_schur,
)
from ropelib.model import GPT, ConfigError, GPTConfig
from ropelib.rope import apply_rope, rope_frequencies

LEARNED = [(ComRoPEAP, 8), (ComRoPELD, 4), (RoPEMixed, 2), (LieRE, 4)]


def perturbed(cls, block_dim, n_axes, dtype=torch.float64, head_dim=16, n_heads=2, **kw):
    torch.manual_seed(0)
    module = cls(head_dim, n_heads=n_heads, n_axes=n_axes, block_dim=block_dim, **kw)
    module = module.to(dtype)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


def every_module(n_axes, **kw):
    """One module of each of the five classes, learned ones moved off their initialization."""
    modules = [perturbed(cls, b, n_axes, **kw) for cls, b in LEARNED]
    return [AxialRoPE(16, n_axes=n_axes, **kw), *modules]


def qk(B=3, H=2, T=9, D=16, dtype=torch.float64):
    torch.manual_seed(1)
    return torch.randn(B, H, T, D, dtype=dtype), torch.randn(B, H, T, D, dtype=dtype)


def scores(module, q, k, positions=None, **kw):
    q, k = module.rotate_queries_and_keys(q, k, positions, **kw)
    return q @ k.transpose(-1, -2)


@pytest.mark.parametrize("cls, b", LEARNED)
@pytest.mark.parametrize("n_axes", [1, 2, 3])
def test_closed_form_equals_matrix_exp_in_float64(cls, b, n_axes):
    head_dim = 24 if n_axes == 3 else 16  # AP and LieRE: a block for every axis
    module = perturbed(cls, b, n_axes, head_dim=head_dim)
    positions = torch.randn(7, n_axes, dtype=torch.float64) * 20
    A = module.angle_matrices()
    assert A.shape == (n_axes, 2, head_dim // b, b, b)
    expected = torch.matrix_exp(torch.einsum("ti,ihjab->thjab", positions, A))
    assert (module.rotation(positions) - expected).abs().max() < 1e-10


@pytest.mark.parametrize("cls, b", LEARNED)
def test_rotate_queries_and_keys_equals_the_rotation_blocks(cls, b):
    module = perturbed(cls, b, n_axes=2)
    q, k = qk()
    positions = torch.rand(9, 2, dtype=torch.float64) * 5
    R = module.rotation(positions).transpose(0, 1)  # [H, T, nb, b, b]

    def by_blocks(x):
        return (R @ x.unflatten(-1, (16 // b, b))[..., None]).squeeze(-1).flatten(-2)

    expected = by_blocks(q) @ by_blocks(k).transpose(-1, -2)
    torch.testing.assert_close(scores(module, q, k, positions), expected)


@pytest.mark.parametrize("cls, b", LEARNED)
def test_rope_equation_in_float32_holds_exactly_for_commuting_schemes(cls, b):
    module = perturbed(cls, b, n_axes=2, dtype=torch.float32)
    x, y = torch.rand(32, 2) * 8, torch.rand(32, 2) * 8
    lhs = module.rotation(x).transpose(-1, -2) @ module.rotation(y)
    error = (lhs - module.rotation(y - x)).abs().max()
    if cls.commuting:
        assert error < 1e-5
    else:
        assert error > 1e-3


def test_text_positions_up_to_4096_keep_the_rope_equation_in_float32():
    module = perturbed(ComRoPEAP, 8, n_axes=1, dtype=torch.float32)
    m, n = torch.tensor([4000.0]), torch.tensor([4096.0])
    lhs = module.rotation(m).transpose(-1, -2) @ module.rotation(n)
    assert (lhs - module.rotation(n - m)).abs().max() < 1e-5


@pytest.mark.parametrize("n_axes", [1, 2])
def test_relative_property_scores_depend_on_position_differences_only(n_axes):
    q, k = qk()
    positions = torch.rand(9, n_axes, dtype=torch.float64) * 6
    shift = torch.linspace(-7.5, 3.25, n_axes, dtype=torch.float64)
    for module in every_module(n_axes):
        gap = scores(module, q, k, positions) - scores(module, q, k, positions + shift)
        holds = module.commuting if hasattr(module, "commuting") else True
        if n_axes == 1:  # one generator per block: every scheme commutes
            holds = True
        assert (gap.abs().max() < 1e-9) == holds, type(module).__name__


@pytest.mark.parametrize("n_axes", [1, 2])
def test_per_sample_positions_equal_a_loop_over_samples(n_axes):
    q, k = qk()
    positions = torch.rand(3, 9, n_axes, dtype=torch.float64) * 6
    for module in every_module(n_axes):
        q_rot, k_rot = module.rotate_queries_and_keys(q, k, positions)
        for i in range(3):
            q_i, k_i = module.rotate_queries_and_keys(q[i : i + 1], k[i : i + 1], positions[i])
            torch.testing.assert_close(q_rot[i], q_i[0])
            torch.testing.assert_close(k_rot[i], k_i[0])
        shared = module.rotate_queries_and_keys(q, k, positions[:1])  # [1, T, N] broadcasts
        torch.testing.assert_close(shared[0], module.rotate_queries_and_keys(q, k, positions[0])[0])


@pytest.mark.parametrize("table", [(3, 5, 4), (2, 3, 5, 4), (1, 3, 5, 4), (5, 4)])
def test_the_angle_gradient_passes_gradcheck_for_every_table_shape(table):
    """Shared by the batch, per sample, per sample of one, shared by the heads too."""
    torch.manual_seed(0)
    qs = torch.randn(2, 3, 5, 8, dtype=torch.float64, requires_grad=True)
    ks = torch.randn(2, 3, 5, 8, dtype=torch.float64, requires_grad=True)
    angles = (10 * torch.randn(*table, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(_RotateByLearnedAngles.apply, (qs, ks, angles))


def _by_autograd(module, q, k, positions):
    """The spectral schemes' rotation written plainly, for autograd to differentiate."""
    from ropelib.rope import apply_rotary

    angles = module.angles(positions).movedim(-2, -3)
    cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
    q, k = module.change_basis(q), module.change_basis(k)
    return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)


def _outputs_and_gradients(module, rotate, q, k, positions) -> dict:
    """The rotated q and k, and every gradient a step computes, by name."""
    module.zero_grad(set_to_none=True)
    q, k = q.detach().requires_grad_(), k.detach().requires_grad_()
    q_rot, k_rot = rotate(q, k, positions)
    torch.manual_seed(2)
    torch.autograd.backward((q_rot, k_rot), (torch.randn_like(q_rot), torch.randn_like(k_rot)))
    found = {"q'": q_rot, "k'": k_rot, "q": q.grad, "k": k.grad}
    found.update({n: p.grad for n, p in module.named_parameters() if p.grad is not None})
    return found


@pytest.mark.parametrize("cls, b", LEARNED[:3])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("per_sample", [False, True])
def test_the_analytic_backward_equals_autograd_through_cos_and_sin(
    cls, b, dtype, tolerance, per_sample
):
    """Forward, and the gradients of q, k, the frequencies, the basis (and LD's weights)."""
    module = perturbed(cls, b, 2, dtype=dtype)
    q, k = qk(T=40, dtype=dtype)
    torch.manual_seed(4)
    positions = torch.rand(*((3,) if per_sample else ()), 40, 2, dtype=torch.float64) * 300
    ours = _outputs_and_gradients(module, module.rotate_queries_and_keys, q, k, positions)
    theirs = _outputs_and_gradients(module, lambda *a: _by_autograd(module, *a), q, k, positions)
    trained = {n for n, p in module.named_parameters() if p.requires_grad}
    assert set(ours) == set(theirs) == {"q'", "k'", "q", "k", *trained}
    for name, expected in theirs.items():
        assert ours[name].dtype == expected.dtype == dtype
        error = (ours[name] - expected).abs().max()
        assert 0 < expected.abs().max() and error <= tolerance * expected.abs().max(), name


def test_far_positions_keep_their_accuracy_in_float32():
    """The angles are reduced by whole turns in float64: casting 10^6·λ itself would not do."""
    import copy

    module = perturbed(ComRoPEAP, 8, 1, dtype=torch.float32)
    exact = copy.deepcopy(module).double()  # the same λ, in float64
    q, k = qk(dtype=torch.float32)
    positions = 10**6 + torch.arange(9)
    expected = exact.rotate_in_basis(q.double(), k.double(), positions)
    for a, b in zip(module.rotate_in_basis(q, k, positions), expected, strict=True):
        assert a.dtype == torch.float32
        assert (a.double() - b).abs().max() < 1e-5 * b.abs().max()
    angles = module.angles(positions)
    assert (angles.float().double() - angles).abs().max() > 1e-3  # what a plain cast loses


def test_the_compiled_rotation_equals_the_eager_one_with_its_gradients():
    module = perturbed(ComRoPEAP, 8, 1, dtype=torch.float32)
    q, k = qk(T=40, dtype=torch.float32)
    positions = torch.arange(40)
    eager = _outputs_and_gradients(module, module.rotate_in_basis, q, k, positions)
    compiled = torch.compile(module.rotate_in_basis, backend="aot_eager", fullgraph=True)
    got = _outputs_and_gradients(module, compiled, q, k, positions)
    assert set(got) == set(eager) == {"q'", "k'", "q", "k", "frequencies"}
    for name, expected in eager.items():
        scale = expected.abs().max().item()
        torch.testing.assert_close(got[name], expected, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("n_axes", [1, 2])
def test_prefix_tokens_stay_unrotated_and_positions_describe_the_rest(n_axes):
    q, k = qk(T=11)
    positions = torch.rand(9, n_axes, dtype=torch.float64) * 6
    for module in every_module(n_axes, prefix_tokens=2):
        q_rot, k_rot = module.rotate_queries_and_keys(q, k, positions)
        assert torch.equal(q_rot[:, :, :2], q[:, :, :2]) and torch.equal(
            k_rot[:, :, :2], k[:, :, :2]
        )
        module.prefix_tokens = 0
        rest = module.rotate_queries_and_keys(q[:, :, 2:], k[:, :, 2:], positions)
        torch.testing.assert_close(q_rot[:, :, 2:], rest[0])
        torch.testing.assert_close(k_rot[:, :, 2:], rest[1])


def test_prefix_tokens_with_a_kv_cache_offset():
    q, k = qk(T=10)
    for module in every_module(1, prefix_tokens=1):
        full = module.rotate_queries_and_keys(q, k)
        head = module.rotate_queries_and_keys(q[:, :, :4], k[:, :, :4])
        tail = module.rotate_queries_and_keys(q[:, :, 4:], k[:, :, 4:], offset=4)
        torch.testing.assert_close(torch.cat((head[0], tail[0]), dim=2), full[0])
        torch.testing.assert_close(torch.cat((head[1], tail[1]), dim=2), full[1])
        assert torch.equal(full[0][:, :, 0], q[:, :, 0])


@pytest.mark.parametrize("n_axes", [1, 2])
def test_bthd_layout_equals_bhtd_transposed(n_axes):
    q, k = qk()
    positions = torch.rand(3, 9, n_axes, dtype=torch.float64) * 6
    for module in every_module(n_axes, prefix_tokens=1):
        bhtd = module.rotate_queries_and_keys(q, k, positions[:, 1:])
        module.layout = "bthd"
        bthd = module.rotate_queries_and_keys(
            q.transpose(1, 2), k.transpose(1, 2), positions[:, 1:]
        )
        torch.testing.assert_close(bthd[0].transpose(1, 2), bhtd[0])
        torch.testing.assert_close(bthd[1].transpose(1, 2), bhtd[1])


def test_axial_rope_with_one_axis_is_rope():
    q, k = qk()
    q_rot, k_rot = AxialRoPE(16, base=500.0).rotate_queries_and_keys(q, k, offset=3)
    torch.testing.assert_close(q_rot, apply_rope(q, torch.arange(3, 12), base=500.0))
    torch.testing.assert_close(k_rot, apply_rope(k, torch.arange(3, 12), base=500.0))


def test_axial_frequencies_deal_rope_rates_out_to_axes():
    assert torch.equal(axial_frequencies(16, 1, 4), rope_frequencies(16))
    two = axial_frequencies(16, 2, 2, 100.0)
    torch.testing.assert_close(two[0::2], rope_frequencies(8, 100.0))
    torch.testing.assert_close(two[1::2], rope_frequencies(8, 100.0))
    three = axial_frequencies(24, 3, 4).view(6, 2)  # blocks 0, 3 -> axis 0, ...
    torch.testing.assert_close(three[[0, 3]].flatten(), rope_frequencies(8))
    with pytest.raises(ValueError, match="block_dim"):
        axial_frequencies(16, 2, 3)


def test_comrope_ap_starts_as_axial_rope_up_to_the_order_of_channels():
    q, k = qk()
    positions = torch.rand(9, 2, dtype=torch.float64) * 6
    ap = ComRoPEAP(16, n_heads=2, n_axes=2, block_dim=8).double()
    # AP's pair p of block j serves axis j mod 2 as its (j // 2 * 4 + p)-th pair; axial
    # RoPE's pair i serves axis i mod 2 as its (i // 2)-th
    order = [(j // 2 * 4 + p) * 2 + j % 2 for j in range(2) for p in range(4)]
    channels = torch.tensor([[2 * i, 2 * i + 1] for i in order]).flatten()
    expected = scores(AxialRoPE(16, n_axes=2), q, k, positions)
    got = scores(ap, q[..., channels], k[..., channels], positions)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_half_precision_is_rotated_in_float32_and_cast_back():
    q, k = qk(dtype=torch.float32)
    learned = [perturbed(cls, b, 1, dtype=torch.float32) for cls, b in LEARNED]
    for module in [AxialRoPE(16), *learned]:
        reference = module.rotate_queries_and_keys(q, k)
        out = module.rotate_queries_and_keys(q.bfloat16(), k.bfloat16())
        assert out[0].dtype == out[1].dtype == torch.bfloat16
        torch.testing.assert_close(out[0].float(), reference[0], atol=0.1, rtol=0.02)


def test_rotate_in_basis_equals_rotate_after_the_change_of_basis():
    q, k = qk()
    positions = torch.rand(9, 2, dtype=torch.float64) * 6
    for cls, b in LEARNED[:3]:
        module = perturbed(cls, b, 2)
        direct = module.rotate_queries_and_keys(q, k, positions)
        folded = module.rotate_in_basis(module.change_basis(q), module.change_basis(k), positions)
        torch.testing.assert_close(direct[0], folded[0])
        torch.testing.assert_close(module.change_basis(module.change_basis(q), inverse=True), q)


def test_skew_schur_reconstructs():
    S = skew(torch.randn(3, 6, 6, dtype=torch.float64))
    V, lam = skew_schur(S)
    J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    for i in range(3):
        Lambda = torch.block_diag(*[value * J for value in lam[i]])
        torch.testing.assert_close(V[i] @ Lambda @ V[i].T, S[i])
    with pytest.raises(ValueError, match="even"):
        skew_schur(torch.zeros(3, 3))


def test_no_weight_decay_names_the_position_parameters():
    assert ComRoPEAP(16, n_heads=2).no_weight_decay() == {"basis_generator", "frequencies"}
    assert ComRoPELD(16, n_heads=2, n_axes=2, block_dim=4).no_weight_decay() == {
        "basis_generator",
        "frequencies",
        "axis_weights",
    }
    assert "frequencies" in RoPEMixed(16).no_weight_decay()
    assert LieRE(16, n_axes=2, block_dim=4).no_weight_decay() == {"generators"}
    assert AxialRoPE(16).no_weight_decay() == set() and not list(AxialRoPE(16).parameters())
    for cls, b in LEARNED:  # every name is a parameter of the module
        module = cls(16, n_heads=2, n_axes=2, block_dim=b)
        assert module.no_weight_decay() <= dict(module.named_parameters()).keys()


@pytest.mark.parametrize(
    "pe, b", [("comrope-ap", 8), ("comrope-ld", 8), ("rope-mixed", 2), ("liere", 4)]
)
def test_schemes_train_with_finite_gradients_and_name_their_position_parameters(pe, b):
    torch.manual_seed(0)
    config = GPTConfig(
        n_layer=1, n_head=2, n_embd=32, vocab_size=30, pe=pe, pe_options={"block_dim": b}
    )
    model = GPT(config)
    idx = torch.randint(0, 30, (2, 16))
    model(idx, idx)[1].backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    scheme = model.transformer.h[0].attn.pe
    names = scheme.no_weight_decay()
    assert names and names <= dict(scheme.named_parameters()).keys()


def test_comrope_ap_starts_as_rope():
    torch.manual_seed(0)
    rope = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=30, pe="rope")).eval()
    comrope = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=30, pe="comrope-ap")).eval()
    comrope.load_state_dict(rope.state_dict(), strict=False)
    idx = torch.randint(0, 30, (1, 20))
    torch.testing.assert_close(comrope(idx)[0], rope(idx)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(head_dim=16, n_heads=2, block_dim=3), "block_dim"),
        (dict(head_dim=12, n_heads=2, block_dim=8), "block_dim"),
        (dict(head_dim=16, n_heads=0), "n_heads"),
        (dict(head_dim=16, n_heads=2, n_axes=0), "n_axes"),
        (dict(head_dim=16, n_axes=3, block_dim=8), "n_axes = 3"),
        (dict(head_dim=16, prefix_tokens=-1), "prefix_tokens"),
        (dict(head_dim=16, layout="bhdt"), "layout"),
        (dict(head_dim=15), "head_dim"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComRoPEAP(**kwargs)


def test_bad_arguments_of_the_other_classes():
    with pytest.raises(ValueError, match="block_dim must be 2"):
        RoPEMixed(16, n_heads=2, block_dim=4)
    with pytest.raises(ValueError, match="n_axes"):
        AxialRoPE(4, n_axes=3)
    with pytest.raises(ValueError, match="n_axes"):
        LieRE(16, n_axes=3, block_dim=8)
    ComRoPELD(16, n_axes=3, block_dim=8)  # LD: every axis uses every block


def test_bad_inputs_name_the_parameter_and_both_sizes():
    q, k = qk()
    module = ComRoPEAP(16, n_heads=2, n_axes=2, block_dim=4)
    with pytest.raises(ValueError, match=r"positions must have T = 9 rows.*got 8"):
        module.rotate_queries_and_keys(q, k, torch.zeros(8, 2))
    with pytest.raises(ValueError, match=r"positions must be \[T, 2\].*got shape \(9, 3\)"):
        module.rotate_queries_and_keys(q, k, torch.zeros(9, 3))
    with pytest.raises(ValueError, match=r"positions must have B = 3 samples.*got 2"):
        module.rotate_queries_and_keys(q, k, torch.zeros(2, 9, 2))
    with pytest.raises(ValueError, match="positions are required"):
        module.rotate_queries_and_keys(q, k)
    with pytest.raises(ValueError, match=r"q must have n_heads = 2 heads, got 3"):
        module.rotate_queries_and_keys(torch.zeros(3, 3, 9, 16), k, torch.zeros(9, 2))
    with pytest.raises(ValueError, match=r"k must have head_dim = 16 channels, got 8"):
        module.rotate_queries_and_keys(q, k[..., :8], torch.zeros(9, 2))
    with pytest.raises(ValueError, match=r"k must have q's B = 3 and T = 9"):
        module.rotate_queries_and_keys(q, k[:, :, :5], torch.zeros(9, 2))
    with pytest.raises(ValueError, match=r"q must be a 4-D tensor \[bhtd\]"):
        module.rotate_queries_and_keys(q[0], k, torch.zeros(9, 2))
    with pytest.raises(ValueError, match="either positions or offset"):
        AxialRoPE(16).rotate_queries_and_keys(q, k, torch.arange(9), offset=3)
    with pytest.raises(ValueError, match="n_axes"):
        ComRoPEAP(16, n_heads=2, n_axes=2).rotation(torch.zeros(5, 3))


def test_configs_name_the_rotation_block_block_dim():
    with pytest.raises(ConfigError, match="block_dim"):
        GPTConfig(n_embd=32, n_head=2, pe="comrope-ap", pe_options={"block_dim": 6})
    with pytest.raises(ConfigError, match="block_dim must be 2"):
        GPTConfig(n_embd=32, n_head=2, pe="rope-mixed", pe_options={"block_dim": 4})
    with pytest.raises(ConfigError, match="'block_dim'.*context length"):
        GPTConfig(n_embd=32, n_head=2, pe="comrope-ld", pe_options={"block_size": 4})


def test_stored_results_with_the_old_option_name_still_load(tmp_path):
    from ropelib.experiments.comrope_text import load_comrope_text_results, upgrade_config

    old = {"pe": "comrope-ld", "pe_options": {"block_size": 4}, "block_size": 64}
    assert upgrade_config(old) == {
        "pe": "comrope-ld",
        "pe_options": {"block_dim": 4},
        "block_size": 64,
    }
    assert old["pe_options"] == {"block_size": 4}  # the record itself is not changed
    rope = {"pe": "rope", "pe_options": {}}
    assert upgrade_config(rope) is rope
    directory = tmp_path / "comrope-text"
    directory.mkdir()
    record = {"run": "comrope-ld b=4-seed0", "config": old, "val_loss": {"1x": 5.0}}
    (directory / "comrope-ld b=4-seed0.json").write_text(json.dumps(record))
    (loaded,) = load_comrope_text_results(tmp_path)
    assert loaded["config"]["pe_options"] == {"block_dim": 4} and loaded["val_loss"] == {"1x": 5.0}
    fields = ("n_layer", "n_head", "n_embd", "vocab_size", "pe", "pe_options")
    sizes = dict(n_layer=1, n_head=2, n_embd=32, vocab_size=30)
    GPTConfig(**{key: {**sizes, **loaded["config"]}[key] for key in fields})


@pytest.mark.parametrize("pe, b", [("comrope-ap", 8), ("comrope-ld", 4), ("liere", 4)])
def test_the_trainer_leaves_the_position_parameters_undecayed(pe, b):
    from ropelib.train.optim import parameter_groups

    config = GPTConfig(
        n_layer=2, n_head=2, n_embd=32, vocab_size=30, pe=pe, pe_options={"block_dim": b}
    )
    model = GPT(config)
    decay, keep = parameter_groups(model, 0.1)
    decayed = {id(p) for p in decay["params"]}
    position = [(n, p) for n, p in model.named_parameters() if ".pe.angles." in n]
    assert position and any(p.dim() >= 2 for _, p in position)
    assert not [n for n, p in position if id(p) in decayed]
    assert decay["params"] and decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0
    # a standalone module inside someone else's model is exempted the same way
    user_model = torch.nn.ModuleDict(
        {"proj": torch.nn.Linear(4, 4), "rotary": LieRE(16, n_axes=2, block_dim=4)}
    )
    decay, _ = parameter_groups(user_model, 0.1)
    assert [id(p) for p in decay["params"]] == [id(user_model["proj"].weight)]


def test_sizes_may_be_numpy_or_tensor_integers_but_not_bools_or_floats():
    import numpy as np

    module = ComRoPELD(np.int64(16), n_heads=torch.tensor(2), block_dim=np.int32(4))
    assert (module.head_dim, module.n_heads, module.block_dim) == (16, 2, 4)
    assert type(module.head_dim) is int and type(module.n_blocks) is int
    for bad in (dict(n_heads=True), dict(block_dim=4.0)):
        with pytest.raises(ValueError, match="must be an integer"):
            ComRoPEAP(16, **bad)
    q, k = qk()
    offset = np.int64(3)
    torch.testing.assert_close(
        AxialRoPE(16).rotate_queries_and_keys(q, k, offset=offset)[0],
        apply_rope(q, torch.arange(3, 12)),
    )


def _halves(D=16):
    """Interleaved channel order (2i, 2i+1) -> half-split (i, i + D/2)."""
    return torch.cat((torch.arange(0, D, 2), torch.arange(1, D, 2)))


@pytest.mark.parametrize("cls, b", LEARNED[:3])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
def test_half_split_rotation_is_the_interleaved_one_reordered(cls, b, per_sample, compiled):
    """Values and every gradient (q, k, frequencies, basis, LD's weights), to rounding."""
    module = perturbed(cls, b, 2)
    q, k = qk(T=40)
    torch.manual_seed(4)
    positions = torch.rand(*((3,) if per_sample else ()), 40, 2, dtype=torch.float64) * 300
    order = _halves()
    half = lambda q, k, p: module.rotate_in_basis(q, k, p, interleaved=False)  # noqa: E731
    if compiled:
        half = torch.compile(half, backend="aot_eager", fullgraph=True)
    interleaved = _outputs_and_gradients(module, module.rotate_in_basis, q, k, positions)

    module.zero_grad(set_to_none=True)
    leaves = [x[..., order].detach().requires_grad_() for x in (q, k)]
    outputs = half(*leaves, positions)
    torch.manual_seed(2)
    upstream = [torch.randn_like(interleaved[name])[..., order] for name in ("q'", "k'")]
    torch.autograd.backward(outputs, upstream)
    got = {"q'": outputs[0], "k'": outputs[1], "q": leaves[0].grad, "k": leaves[1].grad}
    got.update({n: p.grad for n, p in module.named_parameters() if p.grad is not None})
    assert set(got) == set(interleaved) and len(got) > 4
    for name, expected in interleaved.items():
        if name in ("q'", "k'", "q", "k"):
            expected = expected[..., order]
        scale = expected.abs().max().item()
        assert scale > 0 and (got[name] - expected).abs().max() < 1e-10 * scale, name


def test_half_split_rotates_half_precision_in_float32():
    module = perturbed(ComRoPEAP, 8, 1, dtype=torch.float32)
    q, k = qk(dtype=torch.bfloat16)
    order = _halves()
    reference = module.rotate_in_basis(q.float(), k.float())
    out = module.rotate_in_basis(q[..., order], k[..., order], interleaved=False)
    assert out[0].dtype == out[1].dtype == torch.bfloat16
    for a, b in zip(out, reference, strict=True):
        torch.testing.assert_close(a.float(), b[..., order], atol=0.1, rtol=0.02)


def test_interleaved_must_be_a_bool():
    module = perturbed(ComRoPEAP, 8, 1)
    q, k = qk()
    with pytest.raises(ValueError, match="interleaved must be True or False"):
        module.rotate_in_basis(q, k, interleaved="no")
    with pytest.raises(ConfigError, match="interleaved must be true or false"):
        GPT(GPTConfig(pe="comrope-ap", pe_options={"interleaved": 0}, n_embd=32, n_head=2))
    with pytest.raises(ConfigError, match="does not fold"):
        GPT(GPTConfig(pe="liere", pe_options={"interleaved": False}, n_embd=32, n_head=2))


_SMALL = dict(n_layer=1, n_head=2, n_embd=64, block_size=64, vocab_size=50)


def half_split_comrope_matches_interleaved(device: str, compile_backend: str | None):
    """A compiled comrope-ap with half-split pairs: the eager interleaved model's loss and
    gradients (the same parameters; only where the query and key channels sit differs)."""
    idx = torch.randint(0, 50, (2, 32), generator=torch.Generator().manual_seed(0)).to(device)
    results = []
    for interleaved in (True, False):
        options = {"block_dim": 8, "interleaved": interleaved}
        torch.manual_seed(0)
        model = GPT(GPTConfig(pe="comrope-ap", pe_options=options, **_SMALL)).to(device)
        torch.manual_seed(1)
        with torch.no_grad():  # away from RoPE, so that the basis and frequencies matter
            for name, p in model.named_parameters():
                if "angles" in name:
                    p.add_(0.2 * torch.randn_like(p))
        run = model if interleaved else torch.compile(model, backend=compile_backend)
        _, loss = run(idx, idx)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (loss, grads), (half_loss, half_grads) = results
    torch.testing.assert_close(half_loss, loss, atol=1e-4, rtol=1e-4)
    assert set(half_grads) == set(grads) and any("basis" in n for n in grads)
    for name, expected in grads.items():
        torch.testing.assert_close(half_grads[name], expected, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_half_split_comrope_trains_as_the_interleaved_one(backend):
    """The fast compiled path (Inductor's C++ here) computes the eager interleaved model."""
    half_split_comrope_matches_interleaved("cpu", backend)
