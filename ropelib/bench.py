# generated from notebooks/01_rope.md, notebooks/05_crope.md by tools/export.py, do not edit

"""Benchmarks for `python -m ropelib bench NAME`: ratios measured side by side in one process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

BENCHMARKS: dict[str, Callable[..., dict[str, float]]] = {}


def register_benchmark(name: str) -> Callable:
    """Register `fn(quick: bool) -> {candidate: seconds}` as `python -m ropelib bench NAME`."""

    def decorate(fn: Callable) -> Callable:
        BENCHMARKS[name] = fn
        return fn

    return decorate


def compare_times(
    candidates: dict[str, Callable[[], object]], *, repeats: int = 20, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed round-robin in one process."""
    for run in candidates.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def print_ratios(title: str, times: dict[str, float], reference: str) -> None:
    """Print each candidate's median time and its ratio to `reference`."""
    print(title)
    width = max(map(len, times))
    for name, seconds in times.items():
        ratio = seconds / times[reference]
        print(f"  {name:<{width}}  {seconds * 1e3:9.3f} ms  {ratio:6.2f}x {reference}")


class _CopyBothWays(torch.autograd.Function):
    """The memory floor of an elementwise op: copy forward, copy the gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clone()


def _forward_backward(fn: Callable, q: torch.Tensor, k: torch.Tensor, grad: torch.Tensor):
    def run():
        q.grad = k.grad = None
        torch.autograd.backward((fn(q), fn(k)), (grad, grad))

    return run


@register_benchmark("rope")
def bench_rope(
    quick: bool = False, shape: tuple[int, ...] | None = None, repeats: int | None = None
):
    """apply_rope fwd+bwd on q and k against the memory floor and rotary-embedding-torch."""
    from ropelib.rope import RotaryEmbedding, apply_rope

    shape = shape or ((2, 4, 128, 64) if quick else (8, 8, 1024, 64))
    repeats = repeats or (3 if quick else 20)
    q = torch.randn(shape, requires_grad=True)
    k = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)
    rope = RotaryEmbedding(shape[-1])
    rope_half = RotaryEmbedding(shape[-1], interleaved=False)
    candidates = {
        "memory floor (copy)": _CopyBothWays.apply,
        "apply_rope interleaved": apply_rope,
        "RotaryEmbedding interleaved (cached)": rope,
        "apply_rope half-split": lambda t: apply_rope(t, interleaved=False),
        "RotaryEmbedding half-split (cached)": rope_half,
    }
    try:
        from importlib.metadata import version

        import rotary_embedding_torch

        theirs = rotary_embedding_torch.RotaryEmbedding(dim=shape[-1])
        with torch.no_grad():  # same pairing and frequencies: the outputs must agree
            torch.testing.assert_close(
                theirs.rotate_queries_or_keys(q), apply_rope(q), atol=1e-3, rtol=0
            )
        candidates[f"rotary-embedding-torch {version('rotary-embedding-torch')}"] = (
            theirs.rotate_queries_or_keys
        )
    except ImportError:
        print("rotary-embedding-torch is not installed (pip install -e '.[dev]'): skipping it")
    times = compare_times(
        {name: _forward_backward(fn, q, k, grad) for name, fn in candidates.items()},
        repeats=repeats,
    )
    print_ratios(
        f"RoPE forward+backward on q and k {list(shape)} fp32, threads={torch.get_num_threads()}",
        times,
        "memory floor (copy)",
    )
    return times


def _gauss_complex_linear(x: torch.Tensor, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """(A + iB)(x_r + i x_i) with three real GEMMs (Gauss): the alternative that was measured."""
    x_r, x_i = x[..., 0::2], x[..., 1::2]
    t1, t2 = x_r @ real.T, x_i @ imag.T
    t3 = (x_r + x_i) @ (real + imag).T
    return torch.stack((t1 - t2, t3 - t1 - t2), dim=-1).flatten(-2)


def _projection_times(width: int, tokens: tuple[int, int], repeats: int) -> dict[str, float]:
    from ropelib.crope import ComplexLinear

    x = torch.randn(*tokens, width, requires_grad=True)
    grad = torch.randn(*tokens, 3 * width)
    real = torch.nn.Linear(width, 3 * width)
    complex_layer = ComplexLinear(width, 3 * width)

    def gauss(t: torch.Tensor) -> torch.Tensor:
        a, b = complex_layer.weight_real, complex_layer.weight_imag
        return _gauss_complex_linear(t, a, b) + complex_layer.bias

    torch.testing.assert_close(gauss(x), complex_layer(x), atol=1e-4, rtol=1e-4)

    def forward_backward(fn: Callable) -> Callable[[], None]:
        def step() -> None:
            x.grad = None
            fn(x).backward(grad)

        return step

    candidates = {
        "nn.Linear(C, 3C)": real,
        "ComplexLinear (structured GEMM)": complex_layer,
        "complex-linear, Gauss 3 GEMMs": gauss,
    }
    return compare_times({k: forward_backward(v) for k, v in candidates.items()}, repeats=repeats)


@register_benchmark("crope")
def bench_crope(
    quick: bool = False, widths: tuple[int, ...] | None = None, repeats: int | None = None
):
    """Q/K/V projection fwd+bwd: real Linear vs complex-linear (structured GEMM, Gauss)."""
    widths = widths or ((64, 128) if quick else (128, 512, 768))
    repeats = repeats or (3 if quick else 15)
    tokens = (2, 64) if quick else (8, 256)
    results = {}
    for width in widths:
        results[width] = _projection_times(width, tokens, repeats)
        title = f"Q/K/V projection fwd+bwd, C={width}, tokens={tokens[0]}x{tokens[1]}"
        print_ratios(title, results[width], "nn.Linear(C, 3C)")
    return results
