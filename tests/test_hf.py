"""ropelib.hf against Hugging Face transformers 5.23.0 (the `hf` extra): a tiny Llama built from a
config (2 layers, fp32, random weights, no download) computes the same logits and greedy tokens
with ropelib's rotation as with its own, for every rope type that checkpoints ship."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from ropelib import RotaryEmbedding, RotaryValues, XPos, scaling  # noqa: E402
from ropelib.hf import HFRotaryEmbedding, interleave_rotary_weights, use_ropelib  # noqa: E402

transformers.logging.set_verbosity_error()  # decoding past max_position_embeddings on purpose

TINY = dict(
    vocab_size=97,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=32,
)
HEAD_DIM = 16
ROPE_TYPES = {
    "default": None,
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "yarn": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 16},
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    },
    "longrope": {
        "rope_type": "longrope",
        "factor": 2.0,
        "short_factor": [1.0 + 0.1 * j for j in range(HEAD_DIM // 2)],
        "long_factor": [2.0 + 0.5 * j for j in range(HEAD_DIM // 2)],
        "original_max_position_embeddings": 16,
    },
    "proportional": {"rope_type": "proportional", "partial_rotary_factor": 0.5, "factor": 2.0},
    # YaRN's knobs (DeepSeek's mscale pair; an explicit factor and no rounding)
    "yarn-mscale": {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 8,
        "mscale": 1.0,
        "mscale_all_dim": 0.5,
        "beta_fast": 16,
        "beta_slow": 2,
    },
    "yarn-untruncated": {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 8,
        "truncate": False,
        "attention_factor": 1.3,
    },
}
GENERATE = dict(max_new_tokens=30, do_sample=False, pad_token_id=0)


def tiny_llama(rope: dict | None = None, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**TINY, rope_parameters=rope)).eval()


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    # 40 tokens: past the original length (16) and max_position_embeddings (32); no 0 (padding)
    return torch.randint(1, TINY["vocab_size"], (2, 40), generator=torch.Generator().manual_seed(0))


def logits(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).logits


def registered(name: str) -> bool:
    return name in getattr(scaling, "ROPE_SCALING", {})


@pytest.mark.parametrize("name", list(ROPE_TYPES))
def test_rotary_module_equals_hugging_face(name, tokens):
    rope = ROPE_TYPES[name]
    rope_type = "default" if rope is None else rope["rope_type"]
    if not registered(rope_type):
        pytest.xfail(f"rope type {rope_type!r} is not yet in ropelib.scaling.ROPE_SCALING")
    hf, ours = tiny_llama(rope), use_ropelib(tiny_llama(rope))
    expected, got = logits(hf, tokens), logits(ours, tokens)
    difference = (expected - got).abs().max().item()
    assert difference <= 1e-5, (
        f"transformers {transformers.__version__} LlamaForCausalLM, rope_parameters={rope}: "
        f"logits differ by up to {difference:.2e}"
    )
    if name != "default":  # the rope type changes the model at this length
        assert (expected - logits(tiny_llama(None), tokens)).abs().max() > 1e-4
    prompt = tokens[:, :10]  # decoding grows past 16 and 32 with the KV cache
    hf_tokens, our_tokens = hf.generate(prompt, **GENERATE), ours.generate(prompt, **GENERATE)
    assert torch.equal(hf_tokens, our_tokens), (name, hf_tokens, our_tokens)


def test_dynamic_keeps_hugging_faces_high_water_mark(tokens):
    """After a long call, a shorter one (still past the original length) keeps the longest
    length's frequencies, in Hugging Face as here; a call inside the original length resets."""
    if not registered("dynamic"):
        pytest.xfail("rope type 'dynamic' is not yet in ropelib.scaling.ROPE_SCALING")
    rope = ROPE_TYPES["dynamic"]
    hf, ours = tiny_llama(rope), use_ropelib(tiny_llama(rope))
    for length in (40, 36, 20, 36):
        part = tokens[:, :length]
        assert (logits(hf, part) - logits(ours, part)).abs().max() <= 1e-5, length


@pytest.mark.parametrize("interleaved", [False, True], ids=["half-split", "interleaved"])
def test_attention_function_with_rope_equals_hugging_face(interleaved, tokens):
    hf = tiny_llama()
    model = tiny_llama()
    if interleaved:  # HF's half-split weights, permuted for the interleaved pairing
        interleave_rotary_weights(model)
    use_ropelib(model, RotaryEmbedding(HEAD_DIM, interleaved=interleaved))
    assert model.config._attn_implementation == "ropelib"
    assert (logits(hf, tokens) - logits(model, tokens)).abs().max() <= 1e-5
    prompt = tokens[:, :10]
    assert torch.equal(hf.generate(prompt, **GENERATE), model.generate(prompt, **GENERATE))


def test_interleaved_pairing_without_the_permutation_differs(tokens):
    """Negative control: the permutation is what makes the interleaved model HF's."""
    model = use_ropelib(tiny_llama(), RotaryEmbedding(HEAD_DIM))
    assert (logits(tiny_llama(), tokens) - logits(model, tokens)).abs().max() > 1e-4


@pytest.mark.parametrize("scheme", ["xpos", "rove"])
def test_schemes_decode_with_the_cache_as_without(scheme, tokens):
    rotary = XPos(HEAD_DIM, interleaved=False) if scheme == "xpos" else RotaryValues(HEAD_DIM)
    model = use_ropelib(tiny_llama(), rotary)
    prompt = tokens[:, :10]
    out = model.generate(
        prompt,
        **(GENERATE | dict(max_new_tokens=20)),
        output_logits=True,
        return_dict_in_generate=True,
    )
    full = logits(model, out.sequences[:, :-1])[:, prompt.shape[1] - 1 :]
    difference = (torch.stack(out.logits, dim=1) - full).abs().max().item()
    assert difference <= 1e-5, difference
    # and the scheme is in use: the model is not the plain RoPE one
    assert (logits(model, tokens) - logits(tiny_llama(), tokens)).abs().max() > 1e-4


def test_attention_function_refuses_left_padding(tokens):
    model = use_ropelib(tiny_llama(), XPos(HEAD_DIM))
    prompt = tokens[:, :10]
    mask = torch.ones_like(prompt)
    mask[0, :3] = 0
    with pytest.raises(ValueError, match="left padding"):
        model.generate(prompt, attention_mask=mask, max_new_tokens=2, pad_token_id=0)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="Llama-family"):
        use_ropelib(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="rotate_queries_and_keys"):
        use_ropelib(tiny_llama(), torch.nn.Identity())
    config = LlamaConfig(**TINY)
    config.rope_parameters = {**config.rope_parameters, "rope_type": "no-such-type"}
    with pytest.raises(ValueError, match="'no-such-type' is not in ropelib.scaling.ROPE_SCALING"):
        HFRotaryEmbedding(config)


def test_missing_transformers_names_the_extra():
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "import ropelib.hf\n"
        "try:\n"
        "    ropelib.hf.use_ropelib(object())\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == (
        "ropelib.hf needs Hugging Face transformers: pip install ropelib[hf]"
    )


@pytest.mark.parametrize("name", ["default", "yarn", "llama3"])
def test_a_checkpoint_loaded_in_half_precision_gives_hugging_faces_logits_bit_for_bit(
    name, tokens, tmp_path
):
    tiny_llama(ROPE_TYPES[name]).save_pretrained(tmp_path)
    for dtype in (torch.bfloat16, torch.float16):
        hf = LlamaForCausalLM.from_pretrained(tmp_path, dtype=dtype).eval()
        ours = use_ropelib(LlamaForCausalLM.from_pretrained(tmp_path, dtype=dtype).eval())
        assert hf.model.rotary_emb.inv_freq.dtype == torch.float32  # kept by the loader
        assert torch.equal(logits(hf, tokens), logits(ours, tokens)), (name, dtype)
    cast = use_ropelib(tiny_llama(ROPE_TYPES[name])).to(torch.bfloat16)  # no buffer to round
    assert not any(b.is_floating_point() for b in cast.model.rotary_emb.buffers())
