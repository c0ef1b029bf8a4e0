"""The CUDA path, on a GPU: bf16 autocast, fp16, SDPA's flash and memory-efficient kernels,
`torch.compile`, KV-cache decoding, and every registered scheme's forward and backward.

Every test is marked `cuda` and skips without a CUDA device; `tools/gpu_check.sh` runs them
with `pytest -m cuda` and summarises the result. Its dry mode runs the same tests on the CPU
(ROPELIB_CUDA_TESTS_DEVICE=cpu, compiled through ROPELIB_CUDA_TESTS_BACKEND=aot_eager), so
that their code runs in `make test` between GPUs; there they compare the CPU with itself, and
what only a GPU has (the memory-efficient SDPA kernel) is skipped.
"""

from __future__ import annotations

import os

import pytest
import torch

import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
from ropelib import RotaryEmbedding, apply_rope
from ropelib.model import GPT, POSITION_SCHEMES, GPTConfig, LayerCache

DEVICE = os.environ.get("ROPELIB_CUDA_TESTS_DEVICE", "cuda")  # cpu: the dry run's
BACKEND = os.environ.get("ROPELIB_CUDA_TESTS_BACKEND", "inductor")  # of torch.compile
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device"
    ),
]


@pytest.fixture(autouse=True)
def exact_fp32_matmul():
    """Comparisons with the CPU need fp32 matrix products, not TF32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


SMALL = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=50)


def build(pe: str, device: str = DEVICE, **overrides) -> GPT:
    try:
        config = GPTConfig(pe=pe, **{**SMALL, **overrides})
    except ValueError as error:  # ConfigError: a scheme that needs options or a shape
        pytest.skip(f"pe={pe} does not build at the test's shape: {error}")
    torch.manual_seed(0)
    return GPT(config).to(device)


def tokens(batch: int = 2, length: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, SMALL["vocab_size"], (batch, length), generator=generator)


@pytest.mark.parametrize("pe", sorted(POSITION_SCHEMES))
def test_every_scheme_trains_on_the_gpu_as_on_the_cpu(pe):
    """Forward and backward of each scheme on the GPU: the CPU's loss and gradients."""
    idx = tokens()
    results = []
    for device in ("cpu", DEVICE):
        model = build(pe, device)
        _, loss = model(idx.to(device), idx.to(device))
        loss.backward()
        grads = {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach().cpu(), grads))
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = results
    assert torch.isfinite(gpu_loss)
    torch.testing.assert_close(gpu_loss, cpu_loss, atol=1e-4, rtol=1e-4)
    assert set(gpu_grads) == set(cpu_grads) and gpu_grads
    for name, grad in gpu_grads.items():
        torch.testing.assert_close(grad, cpu_grads[name], atol=1e-3, rtol=1e-3, msg=name)


@pytest.mark.parametrize("pe", ["rope", "crope", "comrope-ap", "hdd"])
def test_bf16_autocast_step_is_close_to_fp32(pe):
    model = build(pe)
    idx = tokens().to(DEVICE)
    _, reference = model(idx, idx)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        _, loss = model(idx, idx)
    loss.backward()
    assert loss.dtype == torch.float32  # cross-entropy runs in fp32 under autocast
    torch.testing.assert_close(loss, reference, atol=0.05, rtol=0.02)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("interleaved", [True, False], ids=["interleaved", "half-split"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_rotation_is_fp32_rotation_rounded(dtype, interleaved):
    """bf16/fp16 are rotated in fp32 and cast back: one rounding of the fp32 result."""
    x = torch.randn(2, 4, 100, 64, device=DEVICE).to(dtype)
    expected = apply_rope(x.float(), interleaved=interleaved).to(dtype)
    rope = RotaryEmbedding(64, interleaved=interleaved).to(DEVICE)
    for got in (apply_rope(x, interleaved=interleaved), rope(x)):
        assert got.dtype == dtype and got.device.type == DEVICE
        torch.testing.assert_close(got, expected, atol=0, rtol=0)


def _sdpa_backends():
    from torch.nn.attention import SDPBackend

    return {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION}


@pytest.mark.parametrize("backend", ["flash", "efficient"])
@pytest.mark.parametrize("pe", ["rope", "comrope-ap"])
def test_sdpa_fused_kernels_give_the_math_kernels_logits(backend, pe):
    """The model's causal attention through flash / memory-efficient SDPA (bf16)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if DEVICE != "cuda" and backend == "efficient":
        pytest.skip("the memory-efficient SDPA kernel is CUDA's only")
    model = build(pe).to(torch.bfloat16).eval()
    idx = tokens().to(DEVICE)
    with torch.no_grad():
        with sdpa_kernel(SDPBackend.MATH):
            expected, _ = model(idx)
        with sdpa_kernel(_sdpa_backends()[backend]):  # only this kernel: no fallback
            got, _ = model(idx)
    torch.testing.assert_close(got.float(), expected.float(), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("pe", ["rope", "crope", "comrope-ap"])
def test_compiled_model_trains_as_eager(pe):
    """`torch.compile` (Inductor, Triton) of the model: the eager loss and gradients."""
    idx = tokens().to(DEVICE)
    results = []
    for compiled in (False, True):
        model = build(pe)
        step = torch.compile(model, backend=BACKEND) if compiled else model
        _, loss = step(idx, idx)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((loss.detach(), grads))
    (loss, grads), (compiled_loss, compiled_grads) = results
    torch.testing.assert_close(compiled_loss, loss, atol=1e-4, rtol=1e-4)
    for got, expected in zip(compiled_grads, grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-3)


def test_compiled_half_split_comrope_trains_as_the_interleaved_one():
    """Inductor (Triton) on the half-split folded rotation, on the GPU."""
    from test_comrope import half_split_comrope_matches_interleaved

    half_split_comrope_matches_interleaved(DEVICE, BACKEND)


@pytest.mark.parametrize("interleaved", [True, False], ids=["interleaved", "half-split"])
def test_compiled_rotation_equals_eager_forward_and_backward(interleaved):
    rope = RotaryEmbedding(64, interleaved=interleaved).to(DEVICE)
    compiled = torch.compile(rope.rotate_queries_and_keys, fullgraph=True, backend=BACKEND)
    q = torch.randn(2, 8, 256, 64, device=DEVICE, requires_grad=True)
    k = torch.randn(2, 2, 256, 64, device=DEVICE, requires_grad=True)  # fewer kv heads
    weights = torch.randn(2, 8, 256, 64, device=DEVICE)
    grads = []
    for fn in (rope.rotate_queries_and_keys, compiled):
        q.grad = k.grad = None
        q_rot, k_rot = fn(q, k)
        ((q_rot * weights).sum() + k_rot.square().sum()).backward()
        grads.append((q_rot.detach(), q.grad.clone(), k.grad.clone()))
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pe", ["rope", "xpos", "learned", "crope"])
def test_kv_cache_decoding_on_the_gpu_equals_the_full_forward(pe):
    model = build(pe).eval()
    idx = tokens(length=20).to(DEVICE)
    with torch.no_grad():
        logits, _ = model(idx)
        caches = [LayerCache() for _ in model.transformer.h]
        pieces = [model.lm_head(model.forward_features(idx[:, :7], caches=caches))]
        for t in range(7, 20):
            features = model.forward_features(idx[:, t : t + 1], start=t, caches=caches)
            pieces.append(model.lm_head(features))
    torch.testing.assert_close(torch.cat(pieces, dim=1), logits, atol=1e-4, rtol=1e-4)
    assert all(cache.k.device.type == DEVICE and cache.k.shape[-2] == 20 for cache in caches)


def test_generate_with_the_cache_on_the_gpu_picks_the_uncached_tokens():
    model = build("rope").eval()
    prompt = tokens(length=5).to(DEVICE)
    runs = []
    for use_cache in (True, False):
        generator = torch.Generator(device=DEVICE).manual_seed(1)
        runs.append(  # greedy: rounding cannot turn one sample into another
            model.generate(prompt, 10, 0.0, use_cache=use_cache, generator=generator)
        )
    assert runs[0].device.type == DEVICE and torch.equal(runs[0], runs[1])
