"""The GPT-2 and its position schemes (the chapter *A GPT-2 with pluggable position schemes*)."""

from __future__ import annotations

import pytest
import torch

import ropelib.schemes  # noqa: F401  (registers the built-in adapters)
from ropelib.model import (
    GPT,
    POSITION_SCHEMES,
    ConfigError,
    GPTConfig,
    LayerCache,
    PositionScheme,
    get_scheme,
    register_scheme,
)
from ropelib.schemes.absolute import LearnedPositions, SinusoidalPositions
from ropelib.schemes.rope import RoPEScheme, XPosScheme

SMALL = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=40)
BUILT_IN = ["none", "learned", "sinusoidal", "rope", "xpos"]


def model_for(pe: str, **overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(pe=pe, **{**SMALL, **overrides})).eval()


def test_built_in_schemes_are_registered():
    assert set(BUILT_IN) <= set(POSITION_SCHEMES)


@pytest.mark.parametrize("pe", BUILT_IN)
def test_cached_decoding_equals_full_forward(pe):
    model = model_for(pe)
    idx = torch.randint(0, 40, (3, 20))
    logits, _ = model(idx)
    caches = [LayerCache() for _ in model.transformer.h]
    pieces = [model.lm_head(model.forward_features(idx[:, :7], caches=caches))]
    for t in range(7, 20):
        pieces.append(
            model.lm_head(model.forward_features(idx[:, t : t + 1], start=t, caches=caches))
        )
    torch.testing.assert_close(torch.cat(pieces, dim=1), logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pe", BUILT_IN)
def test_generate_with_and_without_cache_sample_the_same_tokens(pe):
    model = model_for(pe)
    prompt = torch.randint(0, 40, (2, 5))
    runs = [
        model.generate(
            prompt,
            10,
            temperature=0.8,
            top_k=5,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(1),
        )
        for use_cache in (True, False)
    ]
    assert runs[0].shape == (2, 15) and torch.equal(runs[0], runs[1])


def test_learned_positions_slide_a_window_past_block_size():
    model = model_for("learned", block_size=8)
    out = model.generate(torch.zeros(1, 4, dtype=torch.long), 10, temperature=0)
    assert out.shape == (1, 14)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))
    assert model.max_length == 8 and model_for("rope").max_length is None


@pytest.mark.parametrize("pe", ["rope", "xpos", "none", "sinusoidal"])
def test_non_learned_schemes_run_past_the_training_context(pe):
    model = model_for(pe, block_size=8)
    logits, loss = model(torch.zeros(2, 40, dtype=torch.long), torch.zeros(2, 40, dtype=torch.long))
    assert logits.shape == (2, 40, 40) and torch.isfinite(loss)


@pytest.mark.parametrize("pe", BUILT_IN)
def test_bf16_autocast_forward_and_backward_on_cpu(pe):
    model = model_for(pe).train()
    idx = torch.randint(0, 40, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(idx, idx)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_every_parameter_gets_a_gradient_so_ddp_needs_no_unused_parameter_search():
    for pe in BUILT_IN:
        model = model_for(pe).train()
        idx = torch.randint(0, 40, (2, 16))
        model(idx, idx)[1].backward()
        unused = [n for n, p in model.named_parameters() if p.grad is None]
        assert unused == [], (pe, unused)


def test_gpt2_initialisation():
    model = GPT(GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=1000, pe="learned"))
    assert model.lm_head.weight is model.transformer.wte.weight
    std = model.transformer.h[0].mlp.c_fc.weight.std().item()
    residual_std = model.transformer.h[0].attn.c_proj.weight.std().item()
    assert std == pytest.approx(0.02, rel=0.05)
    assert residual_std == pytest.approx(0.02 / (2 * 8) ** 0.5, rel=0.05)
    assert model.transformer.h[0].mlp.c_fc.bias.abs().max() == 0


def test_a_new_scheme_plugs_in_without_editing_the_model():
    @register_scheme("test-halve-values")
    class HalveValues(PositionScheme):
        def values(self, v, positions):
            return v * 0.5

    try:
        model = model_for("test-halve-values")
        assert isinstance(model.transformer.h[0].attn.pe, HalveValues)
        model(torch.zeros(1, 4, dtype=torch.long))
    finally:
        del POSITION_SCHEMES["test-halve-values"]


def test_xpos_runs_at_far_positions_and_refuses_a_span_that_overflows():
    """Centred scales: the absolute position does not matter, the span within one call does."""
    model = model_for("xpos")
    idx = torch.randint(0, 40, (1, 6))
    near = model.forward_features(idx)
    far = model.forward_features(idx, start=1_000_000)
    torch.testing.assert_close(far, near, atol=1e-4, rtol=1e-4)
    caches = [LayerCache() for _ in model.transformer.h]
    model.forward_features(idx[:, :1], caches=caches)  # the cache keeps the centre 0
    with pytest.raises(ValueError, match="overflow"):
        model.forward_features(idx[:, 1:2], start=100_000, caches=caches)


def test_model_on_meta_device_then_materialised():
    with torch.device("meta"):
        model = GPT(GPTConfig(pe="rope", **SMALL))
    model = model.to_empty(device="cpu")
    assert model.transformer.h[0].attn.pe.rope.frequencies.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, field_name",
    [
        (dict(pe="rop"), "pe"),
        (dict(pe="rope", n_embd=36, n_head=4), "head_dim"),
        (dict(pe="xpos", n_embd=20, n_head=4), "head_dim"),
        (dict(n_embd=30, n_head=4), "n_embd"),
        (dict(n_layer=0), "n_layer"),
        (dict(n_head=-1), "n_head"),
        (dict(block_size=2.5), "block_size"),
        (dict(vocab_size=True), "vocab_size"),
        (dict(dropout=-0.1), "dropout"),
        (dict(rope_base=0.5), "rope_base"),
        (dict(pe_options=[1]), "pe_options"),
        (dict(pe="learned", pe_options={"interleaved": False}), "pe_options"),
        (dict(pe="xpos", pe_options={"gamma": -1.0}), "pe_options"),
    ],
)
def test_bad_configs_name_the_field(kwargs, field_name):
    with pytest.raises(ValueError, match=field_name):
        GPT(GPTConfig(**{**SMALL, **kwargs}))


def test_bad_idx():
    model = model_for("rope")
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(4))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 4))


def test_config_errors_are_value_errors_and_name_the_registered_schemes():
    with pytest.raises(ConfigError) as caught:
        GPTConfig(pe="rop")
    message = str(caught.value)
    assert "'rop'" in message and all(name in message for name in BUILT_IN)
    assert "\n" not in message  # the command line prints it as one line
    with pytest.raises(ConfigError):
        get_scheme("rop")
    assert issubclass(ConfigError, ValueError)
    for bad in (
        dict(n_layer=0),
        dict(pe="xpos", pe_options={"scale_base": 0}),
        dict(pe="rope", pe_options={"gamma": 0.5}),
        dict(n_embd=36, n_head=4),
    ):
        with pytest.raises(ConfigError):
            GPTConfig(**{**SMALL, **bad})


def test_schemes_are_adapters_in_ropelib_schemes():
    assert POSITION_SCHEMES["learned"] is LearnedPositions
    assert POSITION_SCHEMES["sinusoidal"] is SinusoidalPositions
    assert POSITION_SCHEMES["rope"] is RoPEScheme and POSITION_SCHEMES["xpos"] is XPosScheme
    assert issubclass(XPosScheme, RoPEScheme)  # context extension treats both as RoPE
    layer = model_for("xpos").transformer.h[0].attn.pe
    assert layer.rope is layer.xpos.rope


@pytest.mark.parametrize("pe", BUILT_IN)
def test_built_in_schemes_take_no_parameter_out_of_weight_decay(pe):
    model = model_for(pe)
    for module in model.modules():
        if isinstance(module, PositionScheme):
            assert module.no_weight_decay() == set()


def test_a_schemes_no_weight_decay_names_its_own_parameters():
    @register_scheme("test-learned-scale")
    class LearnedScale(PositionScheme):
        def __init__(self, config, layer=None):
            super().__init__(config, layer)
            self.scale = torch.nn.Parameter(torch.ones(config.head_dim, config.head_dim))

        def no_weight_decay(self):
            return {"scale"}

    try:
        model = model_for("test-learned-scale")
        names = {
            f"{prefix}.{name}" if prefix else name
            for prefix, module in model.named_modules()
            if isinstance(module, PositionScheme)
            for name in module.no_weight_decay()
        }
        assert "transformer.h.0.attn.pe.scale" in names
        assert names <= {name for name, _ in model.named_parameters()}
    finally:
        del POSITION_SCHEMES["test-learned-scale"]


def test_a_value_error_while_building_a_scheme_is_a_config_error():
    @register_scheme("test-refuses-to-build")
    class RefusesToBuild(PositionScheme):
        def __init__(self, config, layer=None, width: int = 1):
            super().__init__(config, layer)
            if layer is not None and width > config.head_dim:
                raise ValueError(f"pe_options: width must be at most head_dim, got {width}")

    try:
        config = GPTConfig(pe="test-refuses-to-build", pe_options={"width": 99}, **SMALL)
        with pytest.raises(ConfigError, match="width"):
            GPT(config)
    finally:
        del POSITION_SCHEMES["test-refuses-to-build"]


def test_get_scheme_reads_the_registry_and_imports_nothing():
    import sys

    import ropelib.model

    before = {name for name in sys.modules if name.startswith("ropelib")}
    with pytest.raises(ConfigError, match="'not-a-scheme'"):
        get_scheme("not-a-scheme")
    assert {name for name in sys.modules if name.startswith("ropelib")} == before
    assert not hasattr(ropelib.model, "import_chapters")


HALF_CASES = [(pe, {}) for pe in sorted(POSITION_SCHEMES)] + [
    ("hdd", {"map": "cayley"}),
    ("hdd", {"block_dim": 8}),  # the general matrix exponential, not the 4x4 closed form
    ("comrope-ap", {"interleaved": False}),
]


@pytest.mark.parametrize("pe, options", HALF_CASES, ids=lambda case: str(case))
def test_a_half_precision_model_gives_its_float32_logits(pe, options):
    """A GPT cast to bf16 or fp16 (inference, say): the fp32 model's logits to that precision.

    PyTorch's CPU matrix_exp of a batch is wrong in half precision: the ComRoPE bases and
    HDD's increments are exponentiated in float32, and HDD's generators computed in float32.
    """
    idx = torch.randint(0, SMALL["vocab_size"], (2, 24), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = GPT(GPTConfig(pe=pe, pe_options=options, **SMALL)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():  # learned parts away from their start
            if "angles" in name or "increments" in name:
                p.add_(0.05 * torch.randn_like(p))
        expected, _ = model(idx)
        for dtype, atol in ((torch.bfloat16, 0.03), (torch.float16, 0.01)):
            got, _ = model.to(dtype)(idx)
            assert got.dtype == dtype
            torch.testing.assert_close(got.float(), expected, atol=atol, rtol=0)
            model.float()
