# generated from notebooks/94_benchmarks.md by tools/export.py, do not edit

# %% notebooks/94_benchmarks.md: Benchmarks / RoPE: speed
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


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE: speed
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


# %% notebooks/94_benchmarks.md: Benchmarks / Training: speed
@register_benchmark("train")
def bench_train(
    quick: bool = False, repeats: int | None = None, schemes: list[str] | None = None
) -> dict[str, float]:
    """Seconds per training step of each position scheme and of a plain nanoGPT-style loop."""
    import importlib
    import itertools
    import pkgutil

    import numpy as np

    import ropelib
    from ropelib.model import GPT, POSITION_SCHEMES
    from ropelib.train import (
        TrainConfig,
        configure_optimizer,
        learning_rate,
        micro_batch,
        model_config,
        train_step,
    )

    batch, block, vocab = (4 if quick else 12), 64, 65  # 65: nanoGPT's shakespeare_char
    repeats = repeats or (3 if quick else 10)
    tokens = np.random.default_rng(0).integers(0, vocab, 100_000).astype(np.uint16)
    baby = dict(n_layer=4, n_head=4, n_embd=128, block_size=block, batch_size=batch)
    baby.update(tokenizer="char", max_iters=5000, warmup_iters=100)
    steps = itertools.count()

    def trainer(config: TrainConfig, model: torch.nn.Module) -> Callable[[], None]:
        optimizer = configure_optimizer(model, config)

        def run():
            step = next(steps)
            batches = [micro_batch(tokens, config, step, 0)]
            train_step(model, optimizer, batches, learning_rate(config, step), config.grad_clip)

        return run

    for module in pkgutil.iter_modules(ropelib.__path__):  # later chapters register schemes
        if module.name not in ("__main__", "cli"):
            importlib.import_module(f"ropelib.{module.name}")
    candidates: dict[str, Callable[[], object]] = {}
    schemes = schemes or sorted(POSITION_SCHEMES)
    for name in ["learned", *(s for s in schemes if s != "learned")]:
        try:
            config = TrainConfig(**baby, pe=name)
        except ValueError as error:  # a scheme that needs options or another shape
            print(f"skipping pe={name}: {error}")
            continue
        torch.manual_seed(0)
        candidates[f"trainer, pe={name}"] = trainer(config, GPT(model_config(config, vocab)))

    torch.manual_seed(0)
    plain_model = GPT(model_config(TrainConfig(**baby, pe="learned"), vocab))
    plain_optimizer = torch.optim.AdamW(plain_model.parameters(), lr=1e-3)

    def plain_loop():
        starts = torch.randint(len(tokens) - block - 1, (batch,)).tolist()
        x = torch.stack([torch.from_numpy(tokens[i : i + block].astype(np.int64)) for i in starts])
        y = torch.stack(
            [torch.from_numpy(tokens[i + 1 : i + 1 + block].astype(np.int64)) for i in starts]
        )
        _, loss = plain_model(x, y)
        loss.backward()
        plain_optimizer.step()
        plain_optimizer.zero_grad(set_to_none=True)

    candidates["plain loop, pe=learned"] = plain_loop
    times = compare_times(candidates, repeats=repeats, warmup=2)
    print_ratios(
        f"one training step of the baby GPT, batch {batch} x {block} tokens, fp32, "
        f"threads={torch.get_num_threads()}",
        times,
        "trainer, pe=learned",
    )
    for name, seconds in times.items():
        print(f"  {name:<{max(map(len, times))}}  {batch * block / seconds:10,.0f} tokens/s")
    return times


# %% notebooks/94_benchmarks.md: Benchmarks / CRoPE: speed of the projection
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


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
def saved_tensor_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while `fn()` runs."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _comrope_candidates(B: int, H: int, T: int, D: int, b: int, dense: bool) -> tuple[dict, dict]:
    from ropelib.comrope import ComRoPEAP, _FoldedBasisQKV  # noqa: F401
    from ropelib.rope import RotaryEmbedding

    q = torch.randn(B, H, T, D, requires_grad=True)
    k = torch.randn(B, H, T, D, requires_grad=True)
    grad = torch.randn(B, H, T, D)
    weight = torch.randn(2 * H * D, H * D, requires_grad=True)  # the q and k rows of W_qkv
    positions = torch.arange(T)
    rope = RotaryEmbedding(D)
    comrope = ComRoPEAP(D, H, 1, b)
    with torch.no_grad():
        comrope.basis_generator.normal_(std=0.1)

    def folded():
        V = comrope.basis()
        blocks = weight.view(2, H, D // b, b, -1)
        folded_weight = torch.einsum("hjba,shjbc->shjac", V, blocks)  # what the projection does
        q_rot, k_rot = comrope.rotate_pair(q, k, positions, basis_applied=True)
        return q_rot, k_rot, folded_weight

    def autograd_angles():  # the same folded rotation, differentiated by autograd
        V = comrope.basis()
        blocks = weight.view(2, H, D // b, b, -1)
        folded_weight = torch.einsum("hjba,shjbc->shjac", V, blocks)
        cos, sin = comrope.cos_sin(positions, q.dtype)
        return (
            comrope.rotate_in_basis(q, cos, sin),
            comrope.rotate_in_basis(k, cos, sin),
            folded_weight,
        )

    def unfolded():
        return comrope.rotate_pair(q, k, positions)

    def dense_rotation():  # a D x D matrix_exp per token and head, applied densely
        A = torch.block_diag(*[torch.zeros(b, b)] * (D // b)).expand(H, D, D).clone()
        S = comrope.skew_blocks()  # [H, nb, b, b]
        for j in range(D // b):
            A[:, j * b : (j + 1) * b, j * b : (j + 1) * b] = S[:, j]
        R = torch.matrix_exp(positions.float()[:, None, None, None] * A)  # [T, H, D, D]
        return torch.einsum("thde,zhte->zhtd", R, q), torch.einsum("thde,zhte->zhtd", R, k)

    def backward_of(fn):
        def step():
            q.grad = k.grad = weight.grad = None
            outputs = fn()
            comrope.zero_grad(set_to_none=True)
            # everything that trains: q, k and ComRoPE's frequencies (and basis, when folded)
            torch.autograd.backward(outputs[:2], (grad, grad))
            if len(outputs) > 2:  # the folded weight's gradient flows into the basis
                outputs[2].sum().backward()

        return step

    candidates = {"ropelib RoPE (RotaryEmbedding)": lambda: rope.rotate_queries_and_keys(q, k)}
    if dense:
        candidates["dense matrix_exp per token (reference approach)"] = dense_rotation
    else:
        candidates[f"ComRoPE-AP b={b}, basis folded into W"] = folded
        candidates[f"ComRoPE-AP b={b}, folded, autograd through cos/sin"] = autograd_angles
        candidates[f"ComRoPE-AP b={b}, basis per token"] = unfolded
    memory = {name: saved_tensor_bytes(fn) for name, fn in candidates.items()}
    return {name: backward_of(fn) for name, fn in candidates.items()}, memory


@register_benchmark("comrope")
def bench_comrope(quick: bool = False, repeats: int | None = None) -> dict[str, float]:
    """ComRoPE rotation + application fwd+bwd against RoPE, and autograd's saved memory."""
    B, H, T, D, b = (2, 4, 64, 32, 8) if quick else (4, 8, 1024, 64, 8)
    repeats = repeats or (3 if quick else 10)
    runs, memory = _comrope_candidates(B, H, T, D, b, dense=False)
    dense = "dense matrix_exp per token (reference approach)"
    times = compare_times(runs, repeats=repeats)
    print_ratios(
        f"rotation + application fwd+bwd, q and k [{B}, {H}, {T}, {D}]",
        times,
        "ropelib RoPE (RotaryEmbedding)",
    )
    small_T = min(T, 128)
    small_runs, small_memory = _comrope_candidates(B, H, small_T, D, b, dense=True)
    small = compare_times(small_runs, repeats=max(2, repeats // 3))
    print_ratios(f"the same at T={small_T}", small, "ropelib RoPE (RotaryEmbedding)")
    print(f"memory saved for backward at T={T} (MB):")
    for name, size in memory.items():
        print(f"  {name:<48} {size / 2**20:8.1f}")
    print(f"  {dense + f' (T={small_T})':<48} {small_memory[dense] / 2**20:8.1f}")
    return times


# %% notebooks/94_benchmarks.md: Benchmarks / HDD-RoPE: speed
@register_benchmark("hdd")
def bench_hdd(quick: bool = False, repeats: int | None = None) -> dict[str, dict[str, float]]:
    """Associative scan vs sequential loop, and an HDD-RoPE training step vs RoPE."""
    from ropelib.model import GPT, GPTConfig
    from ropelib.scan import _hillis_steele, associative_scan, sequential_scan

    def hillis_steele(matrices: torch.Tensor, dim: int) -> torch.Tensor:
        return _hillis_steele(matrices.movedim(dim, 0), torch.matmul).movedim(0, dim)

    repeats = repeats or (2 if quick else 5)
    results: dict[str, dict[str, float]] = {}
    for T in (32, 64) if quick else (256, 1024, 4096):
        A = torch.randn(2, 4, T, 8, 4, 4)
        M = torch.linalg.matrix_exp(0.1 * (A - A.transpose(-1, -2))).requires_grad_()
        weights = torch.randn_like(M)

        def step(scan, M=M, weights=weights):
            def run():
                M.grad = None
                (scan(M, dim=2) * weights).sum().backward()

            return run

        times = compare_times(
            {
                "sequential loop": step(sequential_scan),
                "Hillis-Steele scan": step(hillis_steele),
                "associative scan": step(associative_scan),
            },
            repeats=repeats,
        )
        print_ratios(
            f"prefix products of [2, 4, {T}, 8] 4x4 rotations, fwd+bwd", times, "associative scan"
        )
        results[f"scan T={T}"] = times
    shape = (
        dict(n_layer=2, n_head=2, n_embd=32, block_size=32)
        if quick
        else dict(n_layer=4, n_head=4, n_embd=128, block_size=64)
    )
    batch = 4 if quick else 12
    idx = torch.randint(0, 512, (batch, shape["block_size"]))
    steps = {}
    for name, pe, options in [
        ("rope", "rope", {}),
        ("hdd b=2", "hdd", {"block_size": 2}),
        ("hdd b=4", "hdd", {"block_size": 4}),
        ("hdd b=4 cayley (matrix scan)", "hdd", {"block_size": 4, "map": "cayley"}),
    ]:
        model = GPT(GPTConfig(vocab_size=512, pe=pe, pe_options=options, **shape))

        def train_step(model=model):
            model.zero_grad(set_to_none=True)
            model(idx, idx)[1].backward()

        steps[name] = train_step
    times = compare_times(steps, repeats=repeats)
    print_ratios(f"training step fwd+bwd, baby GPT {shape}, batch {batch}", times, "rope")
    results["train step"] = times
    return results


__all__ = [
    "bench_comrope",
    "bench_crope",
    "bench_hdd",
    "bench_rope",
    "bench_train",
    "BENCHMARKS",
    "compare_times",
    "print_ratios",
    "register_benchmark",
    "saved_tensor_bytes",
]
