"""Conformance: ropelib against the implementations that released models are run with.

References, pinned in pyproject's `dev` extra: Hugging Face transformers (its rope init
functions, `apply_rotary_pos_emb` and rotary-embedding modules, and the expectations of its
rope-utils tests), rotary-embedding-torch (interleaved RoPE, xPos, PI and NTK knobs) and
torchtune (its RoPE module and Llama 3.1's scaled RoPE). Each test skips when its reference is
not installed; a failure names the reference, the configuration and the largest difference.
Derived in the chapter *Rotary values, context extension and long contexts*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch

from ropelib.rope import apply_rope, rope_frequencies
from ropelib.scaling import ROPE_SCALING, scaled_frequencies
from ropelib.xpos import XPos, xpos_zeta

FP32_EPS = 2.0**-24  # unit roundoff of float32


def largest_relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / |theirs| (0/0 counts as 0: zeros that agree)."""
    ours, theirs = ours.detach().double().cpu(), theirs.detach().double().cpu()
    assert ours.shape == theirs.shape, f"shapes differ: {ours.shape} vs {theirs.shape}"
    difference = (ours - theirs).abs()
    return float((difference / theirs.abs().clamp_min(1e-300)).max())


def largest_absolute(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = ours.detach().double().cpu(), theirs.detach().double().cpu()
    assert ours.shape == theirs.shape, f"shapes differ: {ours.shape} vs {theirs.shape}"
    return float((ours - theirs).abs().max())


def check(reference: str, configuration: object, difference: float, limit: float, kind: str):
    assert difference <= limit, (
        f"{reference}, {configuration}: largest {kind} difference {difference:.3g} > {limit:.3g}"
    )


# ---------------------------------------------------------------------------------------------
# Hugging Face transformers: the rope init functions, one configuration per case
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rope_type: str
    head_dim: int
    base: float = 10000.0
    parameters: dict = field(default_factory=dict)
    seq_len: int | None = None
    max_position_embeddings: int = 131072  # HF's dynamic type reads L from here

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.parameters.items() if "_factor" not in k
                          or not isinstance(v, list))  # fmt: skip
        return (
            f"{self.rope_type}(head_dim={self.head_dim}, base={self.base:g}, {shown}, "
            f"seq_len={self.seq_len})"
        )


g = torch.Generator().manual_seed(0)
PHI3_SHORT = (1 + torch.rand(48, generator=g) * 0.1).tolist()  # Phi-3-mini-128k's shape:
PHI3_LONG = (1 + torch.rand(48, generator=g).cumsum(0)).tolist()  # head_dim 96, L = 4096
YARN_HF_TEST = {"factor": 10.0, "original_max_position_embeddings": 2048}
LONGROPE = {
    "short_factor": PHI3_SHORT,
    "long_factor": PHI3_LONG,
    "factor": 32.0,
    "original_max_position_embeddings": 4096,
}
LLAMA31 = {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
DEEPSEEK_V3 = {
    "factor": 40.0,
    "original_max_position_embeddings": 4096,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
}
CASES = [
    Case("default", 128),
    Case("default", 64, 5e5, {"partial_rotary_factor": 0.5}),
    Case("linear", 128, parameters={"factor": 2.0}),
    Case("linear", 80, parameters={"factor": 8.5, "partial_rotary_factor": 0.4}),
    Case("dynamic", 128, parameters={"factor": 10.0}, seq_len=16384, max_position_embeddings=2048),
    Case("dynamic", 128, parameters={"factor": 10.0}, max_position_embeddings=2048),
    Case("dynamic", 128, parameters={"factor": 10.0}, seq_len=1, max_position_embeddings=2048),
    Case(
        "dynamic",
        64,
        1e6,
        {"factor": 4.0, "partial_rotary_factor": 0.5},
        seq_len=9000,
        max_position_embeddings=4096,
    ),
    Case("yarn", 128, parameters=YARN_HF_TEST),
    Case("yarn", 128, parameters={**YARN_HF_TEST, "beta_fast": 1000.0, "beta_slow": 1.0}),
    Case("yarn", 128, 1e6, {"factor": 4.0, "original_max_position_embeddings": 32768}),
    Case(
        "yarn",
        128,
        1e6,
        {"factor": 4.0, "original_max_position_embeddings": 32768, "truncate": False},
    ),  # fmt: skip
    Case("yarn", 64, parameters={**DEEPSEEK_V3, "mscale": 1.0, "mscale_all_dim": 1.0}),
    Case("yarn", 64, parameters={**DEEPSEEK_V3, "mscale": 0.707, "mscale_all_dim": 1.0}),
    Case("yarn", 128, parameters={**YARN_HF_TEST, "attention_factor": 0.5}),
    Case(
        "yarn",
        96,
        parameters={
            "factor": 4.0,
            "original_max_position_embeddings": 4096,
            "partial_rotary_factor": 0.5,
        },
    ),  # fmt: skip
    Case("longrope", 96, parameters=LONGROPE),
    Case("longrope", 96, parameters=LONGROPE, seq_len=4096),
    Case("longrope", 96, parameters=LONGROPE, seq_len=4097),
    Case("longrope", 96, parameters={**LONGROPE, "attention_factor": 0.5}, seq_len=8192),
    Case("llama3", 128, 5e5, LLAMA31),
    Case(
        "llama3", 128, parameters={**YARN_HF_TEST, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    ),  # fmt: skip
    Case("proportional", 512, 1e6, {"partial_rotary_factor": 0.25}),  # Gemma 4, full attention
    Case("proportional", 64, parameters={"partial_rotary_factor": 0.5, "factor": 2.0}),
    Case("proportional", 64, parameters={"partial_rotary_factor": 1.0}),
]


@pytest.fixture(scope="module")
def hf():
    """transformers' rope utils, with its warnings about config keys silenced."""
    pytest.importorskip("transformers")
    from transformers import modeling_rope_utils
    from transformers.utils import logging

    logging.set_verbosity_error()
    return modeling_rope_utils


def hf_config(case: Case):
    from transformers import LlamaConfig

    rope = {"rope_type": case.rope_type, "rope_theta": case.base, **case.parameters}
    return LlamaConfig(
        hidden_size=case.head_dim * 2,
        num_attention_heads=2,
        head_dim=case.head_dim,
        max_position_embeddings=case.max_position_embeddings,
        rope_parameters=rope,
    )


def hf_frequencies(case: Case) -> tuple[torch.Tensor, float]:
    """Hugging Face's (inv_freq, attention factor) for one case, as released checkpoints use."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding

    config = hf_config(case)
    if case.rope_type == "default":  # each model's own; GPT-NeoX's reads partial rotary
        return GPTNeoXRotaryEmbedding.compute_default_rope_parameters(config)
    return ROPE_INIT_FUNCTIONS[case.rope_type](config, "cpu", seq_len=case.seq_len)


class _Float64Torch:
    """`torch` as HF's rope modules see it, with float32 (`torch.float`) read as float64."""

    float = torch.float64
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


def ours(case: Case) -> tuple[torch.Tensor, float]:
    parameters = dict(case.parameters)
    if case.rope_type == "dynamic":  # HF reads L from the model's max_position_embeddings
        parameters.setdefault("original_max_position_embeddings", case.max_position_embeddings)
    return scaled_frequencies(
        case.rope_type, case.head_dim, base=case.base, seq_len=case.seq_len, **parameters
    )


def test_every_rope_type_with_an_hf_counterpart_is_tested():
    hf_types = {case.rope_type for case in CASES}
    assert hf_types | {"ntk", "yarn-paper"} == set(ROPE_SCALING)  # those two: tests below


@pytest.mark.parametrize("case", CASES, ids=str)
def test_frequencies_and_attention_factor_match_hugging_face(hf, case, monkeypatch):
    """fp32 HF vs float64 ropelib: relative 1e-6; HF's own code run in float64: 1e-12."""
    frequencies, attention = ours(case)
    theirs, their_attention = hf_frequencies(case)
    assert theirs.dtype == torch.float32
    reference = "transformers ROPE_INIT_FUNCTIONS (fp32)"
    check(reference, case, largest_relative(frequencies, theirs), 1e-6, "relative")
    check(reference, case, abs(attention - their_attention), 1e-12, "attention factor")
    # HF's arithmetic is the larger error in fp32: run the same code with float64 tensors
    from transformers.models.gpt_neox import modeling_gpt_neox

    monkeypatch.setattr(hf, "torch", _Float64Torch())
    monkeypatch.setattr(modeling_gpt_neox, "torch", _Float64Torch())
    monkeypatch.setattr(torch.Tensor, "float", torch.Tensor.double)  # `.float()` in longrope
    theirs64, _ = hf_frequencies(case)
    assert theirs64.dtype == torch.float64
    reference = "transformers ROPE_INIT_FUNCTIONS (its code in float64)"
    check(reference, case, largest_relative(frequencies, theirs64), 1e-12, "relative")


@pytest.mark.parametrize("factor", [2.0, 4.0, 16.0])
def test_static_ntk_is_hf_dynamic_at_factor_one_and_a_longer_sequence(hf, factor):
    """HF has no static NTK type: its `dynamic` with factor 1 at length s·L is NTK(s)."""
    L = 2048
    case = Case("dynamic", 64, parameters={"factor": 1.0}, seq_len=int(factor * L),
                max_position_embeddings=L)  # fmt: skip
    theirs, attention = hf_frequencies(case)
    frequencies, ours_attention = scaled_frequencies("ntk", 64, factor=factor)
    check("transformers dynamic(factor=1)", f"ntk(factor={factor})",
          largest_relative(frequencies, theirs), 1e-6, "relative")  # fmt: skip
    assert attention == ours_attention == 1.0


def test_yarn_paper_agrees_with_hf_yarn_only_where_both_ramps_are_clamped(hf):
    """The paper's ramp (yarn-paper) is not HF's: they meet on the kept and the PI pairs."""
    theirs, their_attention = hf_frequencies(Case("yarn", 128, parameters=YARN_HF_TEST))
    paper, attention = scaled_frequencies("yarn-paper", 128, **YARN_HF_TEST)
    ratio = theirs.double() / paper
    ends = torch.cat([torch.arange(0, 17), torch.arange(41, 64)])
    check("transformers yarn", "yarn-paper at its clamped pairs",
          largest_relative(paper[ends], theirs[ends]), 1e-6, "relative")  # fmt: skip
    differing = int((ratio - 1).abs().gt(0.01).sum())
    assert differing == 24 and 2.5 < float(ratio.max()) < 2.6, (differing, float(ratio.max()))
    assert attention == pytest.approx(their_attention, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Hugging Face transformers: applying the rotation
# ---------------------------------------------------------------------------------------------


def hf_cos_sin(frequencies: torch.Tensor, positions: torch.Tensor, attention: float):
    """cos and sin as HF's rotary modules lay them out ([T, rotary_dim]), in float64."""
    angles = positions.double()[:, None] * frequencies.double()[None]
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos() * attention, emb.sin() * attention


@pytest.mark.parametrize("rope_type, parameters", [
    ("default", {}),
    ("yarn", YARN_HF_TEST),
    ("llama3", {**YARN_HF_TEST, "low_freq_factor": 1.0, "high_freq_factor": 4.0}),
])  # fmt: skip
def test_llama_apply_rotary_pos_emb_is_half_split_apply_rope(hf, rope_type, parameters):
    """HF Llama's rotation with the same angle table, float64: apply_rope(interleaved=False)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    q, k = torch.randn(2, 2, 4, 16, 128, dtype=torch.float64, generator=g).unbind(0)
    positions = torch.arange(1000, 1016)  # a decoding step deep into a cache
    frequencies, a = scaled_frequencies(rope_type, 128, **parameters)
    cos, sin = hf_cos_sin(frequencies, positions, a)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos[None], sin[None])
    q_ours = apply_rope(q, positions, interleaved=False, frequencies=frequencies) * a
    k_ours = apply_rope(k, offset=1000, interleaved=False, frequencies=frequencies) * a
    config = f"Llama, {rope_type}, positions 1000..1015"
    for name, mine, theirs in (("q", q_ours, q_hf), ("k", k_ours, k_hf)):
        difference = largest_absolute(mine, theirs) / float(theirs.abs().max())
        check("transformers llama apply_rotary_pos_emb", f"{config}, {name}", difference,
              1e-13, "relative")  # fmt: skip


def test_gpt_neox_partial_rotary_is_apply_rope_with_rotary_dim(hf):
    """GPT-NeoX rotates the first rotary_dim channels half-split and passes the rest."""
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    q, k = torch.randn(2, 1, 3, 10, 64, dtype=torch.float64, generator=g).unbind(0)
    positions = torch.arange(10)
    frequencies, a = scaled_frequencies("default", 64, partial_rotary_factor=0.25)
    cos, sin = hf_cos_sin(frequencies, positions, a)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos[None], sin[None])
    for name, x, theirs in (("q", q, q_hf), ("k", k, k_hf)):
        mine = apply_rope(x, positions, interleaved=False, rotary_dim=16)
        check("transformers gpt_neox apply_rotary_pos_emb", f"rotary_dim 16 of 64, {name}",
              largest_absolute(mine, theirs), 1e-13, "absolute")  # fmt: skip
        assert torch.equal(mine[..., 16:], x[..., 16:])


@pytest.mark.parametrize("rope_type, parameters, length", [
    ("default", {}, 200),
    ("linear", {"factor": 4.0}, 200),
    ("dynamic", {"factor": 4.0}, 300),  # past L = 256: HF recomputes inv_freq
    ("yarn", {"factor": 4.0, "original_max_position_embeddings": 256}, 300),
    ("longrope", {"short_factor": [1.0] * 32, "long_factor": PHI3_LONG[:32], "factor": 4.0,
                  "original_max_position_embeddings": 256}, 300),  # past L: long factors
    ("llama3", {"factor": 4.0, "original_max_position_embeddings": 256,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0}, 200),
])  # fmt: skip
def test_hf_llama_rotary_embedding_module_tables(hf, rope_type, parameters, length):
    """HF's LlamaRotaryEmbedding (fp32, with its dynamic updates) against ropelib's tables."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    case = Case(rope_type, 64, parameters=parameters, max_position_embeddings=256)
    module = LlamaRotaryEmbedding(hf_config(case))
    positions = torch.arange(length)
    x = torch.zeros(1, length, 64)
    cos, sin = module(x, positions[None])
    if rope_type == "dynamic":  # HF reads L from the model's max_position_embeddings
        parameters = dict(parameters, original_max_position_embeddings=256)
    frequencies, a = scaled_frequencies(rope_type, 64, seq_len=length, **parameters)
    cos64, sin64 = hf_cos_sin(frequencies, positions, a)
    # fp32 angles: position·θ rounded, then cos/sin rounded
    limit = 4 * FP32_EPS * (1 + (length - 1) * float(frequencies.max())) * a
    config = f"{rope_type} at positions 0..{length - 1}, L = 256"
    for name, theirs, mine in (("cos", cos[0], cos64), ("sin", sin[0], sin64)):
        check("transformers LlamaRotaryEmbedding", f"{config}, {name}",
              largest_absolute(mine, theirs), limit, "absolute")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Hugging Face's own rope-utils test expectations (tests/utils/test_modeling_rope_utils.py),
# ported: LlamaConfig's defaults, head_dim 128, base 1e4, max_position_embeddings 2048
# ---------------------------------------------------------------------------------------------

HF_L = 2048
# the first values of HF's numerical snapshots (EXPECTED_INV_FREQ), to its 5 digits
HF_YARN_SNAPSHOT = [
    1.0000e00, 8.6596e-01, 7.4989e-01, 6.4938e-01, 5.6234e-01, 4.8697e-01,
    4.2170e-01, 3.6517e-01, 3.1623e-01, 2.7384e-01, 2.3714e-01, 2.0535e-01,
    1.7783e-01, 1.5399e-01, 1.3335e-01, 1.1548e-01, 1.0000e-01, 8.3479e-02,
    6.9590e-02, 5.7925e-02, 4.8136e-02, 3.9931e-02, 3.3061e-02, 2.7315e-02,
    2.2515e-02, 1.8512e-02, 1.5177e-02, 1.2403e-02, 1.0101e-02, 8.1924e-03,
    6.6143e-03, 5.3120e-03, 4.2400e-03, 3.3599e-03, 2.6396e-03, 2.0520e-03,
    1.5746e-03, 1.1882e-03, 8.7713e-04, 6.2810e-04, 4.3007e-04, 2.7384e-04,
]  # fmt: skip
HF_DYNAMIC_SNAPSHOT = [
    1.0000e00, 8.0931e-01, 6.5498e-01, 5.3008e-01, 4.2900e-01, 3.4720e-01,
    2.8099e-01, 2.2741e-01, 1.8404e-01, 1.4895e-01, 1.2055e-01, 9.7558e-02,
]  # fmt: skip


def snapshot_close(values: torch.Tensor, snapshot: list[float]) -> float:
    expected = torch.tensor(snapshot, dtype=torch.float64)
    return largest_relative(values[: len(snapshot)], expected)


def test_hf_default_rope_numerically():
    frequencies, attention = scaled_frequencies("default", 128)
    assert attention == 1.0
    check("HF test_default_rope_numerically", "head_dim 128",
          snapshot_close(frequencies, HF_YARN_SNAPSHOT[:17]), 5e-5, "relative")  # fmt: skip


def test_hf_linear_rope_numerically():
    default = scaled_frequencies("default", 128)[0]
    for factor in (2.0, 10.0, 20.0):
        frequencies, attention = scaled_frequencies("linear", 128, factor=factor)
        assert attention == 1.0
        torch.testing.assert_close(frequencies, default / factor)


def test_hf_dynamic_rope_numerically():
    default = scaled_frequencies("default", 128)[0]
    for factor in (2.0, 10.0, 20.0):  # no scaling unless seq_len exceeds L
        for seq_len in (None, 1):
            frequencies, attention = scaled_frequencies(
                "dynamic", 128, seq_len=seq_len, factor=factor,
                original_max_position_embeddings=HF_L,
            )  # fmt: skip
            assert attention == 1.0
            torch.testing.assert_close(frequencies, default)
    frequencies, _ = scaled_frequencies(
        "dynamic", 128, seq_len=16384, factor=10.0, original_max_position_embeddings=HF_L
    )
    assert not torch.allclose(frequencies, default / 10.0)  # it is NOT a linear factor
    check("HF test_dynamic_rope_numerically", "factor 10, seq_len 16384",
          snapshot_close(frequencies, HF_DYNAMIC_SNAPSHOT), 5e-5, "relative")  # fmt: skip


def test_hf_yarn_rope_numerically():
    default = scaled_frequencies("default", 128)[0]
    for factor in (2.0, 10.0, 20.0):
        context = dict(factor=factor, original_max_position_embeddings=HF_L)
        assert scaled_frequencies("yarn", 128, **context)[1] == 0.1 * math.log(factor) + 1.0
        overridden = scaled_frequencies("yarn", 128, seq_len=1, attention_factor=0.5, **context)
        assert overridden[1] == 0.5
    margin = 1e-8
    frequencies, _ = scaled_frequencies("yarn", 128, beta_fast=32, beta_slow=1, **YARN_HF_TEST)
    assert torch.all(default / 10.0 - margin <= frequencies)
    assert torch.all(frequencies <= default + margin)  # bounded by 1 and the factor
    # a very high beta_fast interpolates every pair but the first; the last 20 are PI's
    frequencies, _ = scaled_frequencies("yarn", 128, beta_fast=1000, beta_slow=1, **YARN_HF_TEST)
    # (HF writes `not is_interpolating[0]`: its fp32 margin rounds away, pair 0 is kept)
    assert frequencies[0] == default[0] and torch.all(frequencies[1:] < default[1:])
    torch.testing.assert_close(frequencies[-20:], default[-20:] / 10.0)
    frequencies, _ = scaled_frequencies("yarn", 128, beta_fast=32, beta_slow=1, **YARN_HF_TEST)
    check("HF test_yarn_rope_numerically", "factor 10, beta 32/1",
          snapshot_close(frequencies, HF_YARN_SNAPSHOT), 5e-5, "relative")  # fmt: skip


def test_hf_longrope_rope_numerically():
    default = scaled_frequencies("default", 128)[0]
    short_factor = [2.0] * 64  # applied up to L
    long_factor = torch.ones(64).cumsum(0).tolist()  # applied past L
    factors = dict(short_factor=short_factor, long_factor=long_factor)
    for factor in (2.0, 10.0, 20.0):
        context = dict(factors, factor=factor, original_max_position_embeddings=HF_L)
        attention = scaled_frequencies("longrope", 128, **context)[1]
        assert attention == math.sqrt(1 + math.log(factor) / math.log(HF_L))
        overridden = scaled_frequencies("longrope", 128, seq_len=1, attention_factor=0.5, **context)
        assert overridden[1] == 0.5
    context = dict(factors, factor=1.0, original_max_position_embeddings=HF_L)
    frequencies, _ = scaled_frequencies("longrope", 128, seq_len=0, **context)
    torch.testing.assert_close(frequencies, default / torch.tensor(short_factor).double())
    frequencies, _ = scaled_frequencies("longrope", 128, seq_len=HF_L + 1, **context)
    torch.testing.assert_close(frequencies, default / torch.tensor(long_factor).double())


def test_hf_llama3_rope_numerically():
    """The fast pairs (wavelength < L/4: 0..30) unchanged, the slow (> L: 41..) divided."""
    default = scaled_frequencies("default", 128)[0]
    for factor in (2.0, 10.0, 20.0):
        frequencies, attention = scaled_frequencies(
            "llama3", 128, factor=factor, original_max_position_embeddings=HF_L,
            low_freq_factor=1, high_freq_factor=4,
        )  # fmt: skip
        assert attention == 1.0
        torch.testing.assert_close(frequencies[:31], default[:31])
        torch.testing.assert_close(frequencies[41:], default[41:] / factor)
        assert torch.all(frequencies[31:41] < default[31:41])
        assert torch.all(frequencies[31:41] > default[31:41] / factor)


# ---------------------------------------------------------------------------------------------
# rotary-embedding-torch: interleaved RoPE, its PI and NTK knobs, and xPos
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ret():
    return pytest.importorskip("rotary_embedding_torch")


def test_rotary_embedding_torch_interleaved_float64(ret):
    """The same angle table (its custom_freqs), float64: apply_rope(interleaved=True)."""
    rotary = ret.RotaryEmbedding(64, custom_freqs=rope_frequencies(64), cache_if_possible=False)
    x = torch.randn(2, 3, 40, 64, dtype=torch.float64, generator=g)
    for offset in (0, 5000):
        theirs = rotary.rotate_queries_or_keys(x, offset=offset)
        mine = apply_rope(x, offset=offset)
        check("rotary-embedding-torch", f"interleaved, head_dim 64, offset {offset}",
              largest_absolute(mine, theirs), 1e-12, "absolute")  # fmt: skip


@pytest.mark.parametrize("knob, rope_type", [("interpolate_factor", "linear"),
                                              ("theta_rescale_factor", "ntk")])  # fmt: skip
def test_rotary_embedding_torch_pi_and_ntk_knobs(ret, knob, rope_type):
    """Its interpolate_factor divides positions (PI); theta_rescale_factor is NTK-aware."""
    rotary = ret.RotaryEmbedding(64, **{knob: 4.0}, cache_if_possible=False)
    frequencies = scaled_frequencies(rope_type, 64, factor=4.0)[0]
    if knob == "theta_rescale_factor":
        check("rotary-embedding-torch", f"{knob}=4 frequencies",
              largest_relative(frequencies, rotary.freqs), 1e-6, "relative")  # fmt: skip
    x = torch.randn(1, 2, 100, 64, generator=g)
    theirs = rotary.rotate_queries_or_keys(x)
    mine = apply_rope(x, frequencies=frequencies)
    limit = 8 * FP32_EPS * (1 + 99 * float(frequencies.max())) * float(x.abs().max())
    check("rotary-embedding-torch", f"{knob}=4, fp32, positions 0..99",
          largest_absolute(mine, theirs), limit, "absolute")  # fmt: skip


def test_rotary_embedding_torch_fp32_default(ret):
    rotary = ret.RotaryEmbedding(64)
    x = torch.randn(2, 3, 256, 64, generator=g)
    theirs, mine = rotary.rotate_queries_or_keys(x), apply_rope(x)
    limit = 8 * FP32_EPS * 256 * float(x.abs().max())  # fp32 angles up to 255 rad
    check("rotary-embedding-torch", "interleaved, fp32, positions 0..255",
          largest_absolute(mine, theirs), limit, "absolute")  # fmt: skip


def test_rotary_embedding_torch_xpos_scores_and_centre(ret):
    """xPos: the scores agree; the rotated q and k agree once both use its centre T // 2.

    rotary-embedding-torch centres positions at T // 2 (an integer), ropelib at the middle
    of the keys' positions, (T - 1) / 2; a centre multiplies q by ζ^(-c/512) and k by
    ζ^(c/512) per pair, which cancels in every score q·k.
    """
    T = 32
    rotary = ret.RotaryEmbedding(64, custom_freqs=rope_frequencies(64), use_xpos=True,
                                 xpos_scale_base=512, cache_if_possible=False)  # fmt: skip
    rotary.scale = xpos_zeta(64, 0.4)  # its (2i + 0.4 D) / 1.4 D, without fp32 rounding
    q, k = torch.randn(2, 2, 4, T, 64, dtype=torch.float64, generator=g).unbind(0)
    q_theirs, k_theirs = rotary.rotate_queries_and_keys(q, k)
    xpos = XPos(64, gamma=0.4, scale_base=512.0)
    q_mine, k_mine = xpos.rotate_queries_and_keys(q, k)
    scores_theirs, scores_mine = q_theirs @ k_theirs.mT, q_mine @ k_mine.mT
    difference = largest_absolute(scores_mine, scores_theirs) / float(scores_theirs.abs().max())
    check("rotary-embedding-torch xpos", "scores q·k, T = 32", difference, 1e-13, "relative")
    assert not torch.allclose(q_mine, q_theirs)  # the centres differ: 15.5 vs 16
    q_mine, k_mine = xpos.rotate_queries_and_keys(q, k, centre=T // 2)
    for name, mine, theirs in (("q", q_mine, q_theirs), ("k", k_mine, k_theirs)):
        check("rotary-embedding-torch xpos", f"{name} with centre T // 2",
              largest_absolute(mine, theirs), 1e-12, "absolute")  # fmt: skip
    # the difference is exactly the centre shift of 1/2: q times ζ^(-1/2 / 512)
    shift = xpos_zeta(64, 0.4).repeat_interleave(2) ** (-0.5 / 512)
    torch.testing.assert_close(xpos.rotate_queries_and_keys(q, k)[0] * shift, q_mine)


# ---------------------------------------------------------------------------------------------
# torchtune: its RoPE module ([b, s, n_h, h_d], interleaved) and Llama 3.1's scaled RoPE
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchtune_modules():
    pytest.importorskip("torchao")  # torchtune refuses to import without it
    pytest.importorskip("torchtune")
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)
    from torchtune.models.llama3_1._position_embeddings import Llama3ScaledRoPE
    from torchtune.modules import RotaryPositionalEmbeddings

    return RotaryPositionalEmbeddings, Llama3ScaledRoPE


def test_torchtune_rope_module(torchtune_modules):
    RotaryPositionalEmbeddings, _ = torchtune_modules
    rope = RotaryPositionalEmbeddings(64, max_seq_len=512, base=10000)
    x = torch.randn(2, 256, 3, 64, generator=g)  # [b, s, n_h, h_d]
    limit = 8 * FP32_EPS * 512 * float(x.abs().max())  # fp32 angles up to 511 rad
    theirs, mine = rope(x), apply_rope(x, layout="bthd")
    check("torchtune RotaryPositionalEmbeddings", "head_dim 64, positions 0..255",
          largest_absolute(mine, theirs), limit, "absolute")  # fmt: skip
    positions = torch.arange(256, 512)
    theirs = rope(x, input_pos=positions)
    mine = apply_rope(x, positions, layout="bthd")
    check("torchtune RotaryPositionalEmbeddings", "input_pos 256..511",
          largest_absolute(mine, theirs), limit, "absolute")  # fmt: skip


def test_torchtune_llama3_scaled_rope_frequencies(torchtune_modules):
    _, Llama3ScaledRoPE = torchtune_modules
    rope = Llama3ScaledRoPE(128, max_seq_len=64, base=500000, scale_factor=8)
    frequencies, attention = scaled_frequencies("llama3", 128, base=5e5, **LLAMA31)
    check("torchtune Llama3ScaledRoPE", "Llama 3.1: head_dim 128, base 5e5, factor 8",
          largest_relative(frequencies, rope.theta), 1e-6, "relative")  # fmt: skip
    assert attention == 1.0
