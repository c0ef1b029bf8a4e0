# generated from notebooks/94_benchmarks.md by tools/export.py, do not edit

# %% notebooks/94_benchmarks.md: Benchmarks / Timing side by side
"""Benchmarks for `python -m ropelib bench NAME` (the appendix *Benchmarks*)."""

from __future__ import annotations

import statistics
import textwrap
import time
from collections.abc import Callable

import torch

BENCHMARKS: dict[str, Callable[..., object]] = {}


def register_benchmark(name: str) -> Callable:
    """Register `fn(quick)` as `bench NAME`. Defined in the appendix *Benchmarks*."""

    def decorate(fn: Callable) -> Callable:
        BENCHMARKS[name] = fn
        return fn

    return decorate


def compare_times(
    candidates: dict[str, Callable[[], object]], *, repeats: int = 20, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call, round-robin. Defined in the appendix *Benchmarks*."""
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
    """Print medians and ratios to `reference`. Defined in the appendix *Benchmarks*."""
    print(
        textwrap.fill(f"{title}; ratio to {reference}:", 88, subsequent_indent="    ")
    )
    width = max(map(len, times))
    for name, seconds in times.items():
        ratio = seconds / times[reference]
        print(f"  {name:<{width}}  {seconds * 1e3:9.3f} ms  {ratio:6.2f}x")


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE against the copy floor
class _CopyBothWays(torch.autograd.Function):
    """The copy floor: copy forward, copy the gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clone()


def _forward_backward(
    fn: Callable, q: torch.Tensor, k: torch.Tensor, grad: torch.Tensor
):
    def run():
        q.grad = k.grad = None
        torch.autograd.backward((fn(q), fn(k)), (grad, grad))

    return run


def _rotary_embedding_torch(q: torch.Tensor) -> dict[str, Callable]:
    """rotary-embedding-torch's rotation, checked against ours, when it is installed."""
    from importlib.metadata import version

    from ropelib.rope import apply_rope

    try:
        import rotary_embedding_torch
    except ImportError:
        print(
            "rotary-embedding-torch is not installed (pip install -e '.[dev]'): skipped"
        )
        return {}
    theirs = rotary_embedding_torch.RotaryEmbedding(dim=q.shape[-1])
    with torch.no_grad():  # same pairing and frequencies: the outputs must agree
        expected = apply_rope(q)
        torch.testing.assert_close(
            theirs.rotate_queries_or_keys(q), expected, atol=1e-3, rtol=0
        )
    name = f"rotary-embedding-torch {version('rotary-embedding-torch')}"
    return {name: theirs.rotate_queries_or_keys}


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE against the copy floor
@register_benchmark("rope")
def bench_rope(
    quick: bool = False,
    shape: tuple[int, ...] | None = None,
    repeats: int | None = None,
) -> dict[str, float]:
    """RoPE fwd+bwd against the copy floor. Defined in the appendix *Benchmarks*."""
    from ropelib.rope import RotaryEmbedding, apply_rope

    shape = shape or ((2, 4, 128, 64) if quick else (8, 8, 1024, 64))
    repeats = repeats or (3 if quick else 20)
    q = torch.randn(shape, requires_grad=True)
    k = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)
    candidates = {
        "copy floor": _CopyBothWays.apply,
        "apply_rope interleaved": apply_rope,
        "RotaryEmbedding interleaved (cached)": RotaryEmbedding(shape[-1]),
        "apply_rope half-split": lambda t: apply_rope(t, interleaved=False),
        "RotaryEmbedding half-split (cached)": RotaryEmbedding(
            shape[-1], interleaved=False
        ),
        **_rotary_embedding_torch(q),
    }
    times = compare_times(
        {name: _forward_backward(fn, q, k, grad) for name, fn in candidates.items()},
        repeats=repeats,
    )
    threads = torch.get_num_threads()
    title = f"RoPE fwd+bwd on q and k {list(shape)} fp32, threads={threads}"
    print_ratios(title, times, "copy floor")
    return times


# %% notebooks/94_benchmarks.md: Benchmarks / One training step of every scheme
def _trainer_step(config, model: torch.nn.Module, tokens, steps) -> Callable[[], None]:
    """One step of the book's trainer: its batches, schedule, clipping and optimiser."""
    from ropelib.train.loop import micro_batch, train_step
    from ropelib.train.optim import configure_optimizer, learning_rate

    optimizer = configure_optimizer(model, config)

    def run():
        step = next(steps)
        batches = [micro_batch(tokens, config, step, 0)]
        lr = learning_rate(config, step)
        train_step(model, optimizer, batches, lr, config.grad_clip)

    return run


def _plain_step(model: torch.nn.Module, tokens, batch: int, block: int):
    """The plainest loop that trains the same model, as nanoGPT's train.py does."""
    import numpy as np

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def window(start: int) -> torch.Tensor:
        return torch.from_numpy(tokens[start : start + block + 1].astype(np.int64))

    def run():
        starts = torch.randint(len(tokens) - block - 1, (batch,)).tolist()
        windows = torch.stack([window(i) for i in starts])
        _, loss = model(windows[:, :-1], windows[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


# %% notebooks/94_benchmarks.md: Benchmarks / One training step of every scheme
@register_benchmark("train")
def bench_train(
    quick: bool = False, repeats: int | None = None, schemes: list[str] | None = None
) -> dict[str, float]:
    """One training step per scheme. Defined in the appendix *Benchmarks*."""
    import itertools

    import numpy as np

    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.model import GPT, POSITION_SCHEMES
    from ropelib.train.config import TrainConfig, model_config

    batch, block, vocab = (4 if quick else 12), 64, 65  # 65: nanoGPT's shakespeare_char
    repeats = repeats or (3 if quick else 10)
    tokens = np.random.default_rng(0).integers(0, vocab, 100_000).astype(np.uint16)
    baby = dict(n_layer=4, n_head=4, n_embd=128, block_size=block, batch_size=batch)
    baby.update(tokenizer="char", max_iters=5000, warmup_iters=100)
    steps = itertools.count()
    candidates: dict[str, Callable[[], object]] = {}
    schemes = schemes or sorted(POSITION_SCHEMES)
    for name in ["learned", *(s for s in schemes if s != "learned")]:
        try:
            config = TrainConfig(**baby, pe=name)
        except ValueError as error:  # a scheme that needs options or another shape
            print(
                textwrap.fill(
                    f"skipping pe={name}: {error}", 88, subsequent_indent="  "
                )
            )
            continue
        torch.manual_seed(0)
        model = GPT(model_config(config, vocab))
        candidates[f"trainer, pe={name}"] = _trainer_step(config, model, tokens, steps)
    torch.manual_seed(0)
    plain = GPT(model_config(TrainConfig(**baby, pe="learned"), vocab))
    candidates["plain loop, pe=learned"] = _plain_step(plain, tokens, batch, block)
    times = compare_times(candidates, repeats=repeats, warmup=2)
    threads = torch.get_num_threads()
    title = f"one training step, baby GPT, {batch} x {block} tokens, threads={threads}"
    print_ratios(title, times, "trainer, pe=learned")
    width = max(map(len, times))
    for name, seconds in times.items():
        print(f"  {name:<{width}}  {batch * block / seconds:10,.0f} tokens/s")
    return times


# %% notebooks/94_benchmarks.md: Benchmarks / CRoPE's projection
def _gauss_complex_linear(
    x: torch.Tensor, real: torch.Tensor, imag: torch.Tensor
) -> torch.Tensor:
    """(A + iB)(x_r + i x_i) with three real GEMMs (Gauss): the alternative measured."""
    x_r, x_i = x[..., 0::2], x[..., 1::2]
    t1, t2 = x_r @ real.T, x_i @ imag.T
    t3 = (x_r + x_i) @ (real + imag).T
    return torch.stack((t1 - t2, t3 - t1 - t2), dim=-1).flatten(-2)


def _projection_times(width: int, tokens: tuple[int, int], repeats: int):
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
    runs = {name: forward_backward(fn) for name, fn in candidates.items()}
    return compare_times(runs, repeats=repeats)


@register_benchmark("crope")
def bench_crope(
    quick: bool = False,
    widths: tuple[int, ...] | None = None,
    repeats: int | None = None,
) -> dict[int, dict[str, float]]:
    """Q/K/V projection, real vs complex. Defined in the appendix *Benchmarks*."""
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
def saved_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes autograd saves in `fn()`. Defined in the appendix *Benchmarks*."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _fold_basis(basis: torch.Tensor, weight: torch.Tensor, b: int) -> torch.Tensor:
    """The basis change applied to the q and k rows of W_qkv, as the projection does."""
    H = basis.shape[0]
    blocks = weight.view(2, H, -1, b, weight.shape[-1])
    return torch.einsum("hjba,shjbc->shjac", basis, blocks)


def _dense_rotation(skew_blocks: torch.Tensor, positions: torch.Tensor, q, k):
    """A dense D x D matrix_exp per token and head: the reference approach."""
    H, n_blocks, b, _ = skew_blocks.shape  # [H, D / b, b, b]
    generator = torch.zeros(H, n_blocks * b, n_blocks * b)
    for j in range(n_blocks):
        generator[:, j * b : (j + 1) * b, j * b : (j + 1) * b] = skew_blocks[:, j]
    angles = positions.float()[:, None, None, None] * generator
    R = torch.matrix_exp(angles)  # [T, H, D, D]
    rotate = "thde,zhte->zhtd"
    return torch.einsum(rotate, R, q), torch.einsum(rotate, R, k)


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
def _comrope_candidates(B: int, H: int, T: int, D: int, b: int, dense: bool):
    """({name: fwd+bwd step}, {name: bytes saved}) of RoPE and the ComRoPE variants."""
    from ropelib.comrope import ComRoPEAP
    from ropelib.rope import RotaryEmbedding, apply_rotary

    q, k = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(2))
    grad = torch.randn(B, H, T, D)
    weight = torch.randn(2 * H * D, H * D, requires_grad=True)  # q and k rows of W_qkv
    positions = torch.arange(T)
    rope = RotaryEmbedding(D)
    comrope = ComRoPEAP(D, n_heads=H, block_dim=b)
    with torch.no_grad():
        comrope.basis_generator.normal_(std=0.1)

    def folded():
        q_rot, k_rot = comrope.rotate_in_basis(q, k, positions)  # q, k from folded W
        return q_rot, k_rot, _fold_basis(comrope.basis(), weight, b)

    def autograd_angles():  # the same folded rotation, differentiated by autograd
        angles = comrope.angles(positions).movedim(-2, -3).to(q.dtype)  # [H, T, D/2]
        cos, sin = angles.cos(), angles.sin()
        q_rot, k_rot = (apply_rotary(x, cos, sin) for x in (q, k))
        return q_rot, k_rot, _fold_basis(comrope.basis(), weight, b)

    candidates = {"RoPE": lambda: rope.rotate_queries_and_keys(q, k)}
    if dense:
        candidates["dense matrix_exp per token"] = lambda: _dense_rotation(
            comrope.skew_blocks(), positions, q, k
        )
    else:
        candidates[f"ComRoPE-AP b={b}, folded"] = folded
        candidates[f"ComRoPE-AP b={b}, folded, autograd cos/sin"] = autograd_angles
        candidates[f"ComRoPE-AP b={b}, basis per token"] = lambda: (
            comrope.rotate_queries_and_keys(q, k, positions)
        )

    def backward_of(fn):
        def step():
            q.grad = k.grad = weight.grad = None
            comrope.zero_grad(set_to_none=True)
            outputs = fn()
            # all that trains: q, k, ComRoPE's frequencies (and basis, when folded)
            torch.autograd.backward(outputs[:2], (grad, grad))
            if len(outputs) > 2:  # the folded weight's gradient flows into the basis
                outputs[2].sum().backward()

        return step

    memory = {name: saved_tensor_bytes(fn) for name, fn in candidates.items()}
    return {name: backward_of(fn) for name, fn in candidates.items()}, memory


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
@register_benchmark("comrope")
def bench_comrope(quick: bool = False, repeats: int | None = None) -> dict[str, float]:
    """ComRoPE against RoPE, time and memory. Defined in the appendix *Benchmarks*."""
    B, H, T, D, b = (2, 4, 64, 32, 8) if quick else (4, 8, 1024, 64, 8)
    repeats = repeats or (3 if quick else 10)
    runs, memory = _comrope_candidates(B, H, T, D, b, dense=False)
    times = compare_times(runs, repeats=repeats)
    title = f"rotation + application fwd+bwd, q and k [{B}, {H}, {T}, {D}]"
    print_ratios(title, times, "RoPE")
    small_T = min(T, 128)
    small_runs, small_memory = _comrope_candidates(B, H, small_T, D, b, dense=True)
    small = compare_times(small_runs, repeats=max(2, repeats // 3))
    print_ratios(f"the same at T={small_T}", small, "RoPE")
    print(f"memory saved for backward (MB), at T={T} unless named:")
    dense = "dense matrix_exp per token"
    rows = {**memory, f"{dense} (T={small_T})": small_memory[dense]}
    width = max(map(len, rows))
    for name, size in rows.items():
        print(f"  {name:<{width}}  {size / 2**20:8.1f}")
    return times


# %% notebooks/94_benchmarks.md: Benchmarks / HDD-RoPE: the scan and a training step
def _hillis_steele(matrices: torch.Tensor, dim: int) -> torch.Tensor:
    """Prefix products in ceil(log2 T) rounds of T products: the alternative timed."""
    x, offset = matrices.movedim(dim, 0), 1
    while offset < x.shape[0]:  # entry t >= offset: (product to t - offset) @ (to t)
        x = torch.cat((x[:offset], x[:-offset] @ x[offset:]), dim=0)
        offset *= 2
    return x.movedim(0, dim)


def _scan_times(T: int, repeats: int) -> dict[str, float]:
    """Prefix products of [2, 4, T, 8] 4x4 rotations, fwd+bwd, by three scans."""
    from ropelib.scan import associative_scan, sequential_scan

    A = torch.randn(2, 4, T, 8, 4, 4)
    M = torch.linalg.matrix_exp(0.1 * (A - A.transpose(-1, -2))).requires_grad_()
    weights = torch.randn_like(M)
    with torch.no_grad():
        torch.testing.assert_close(_hillis_steele(M, 2), associative_scan(M, dim=2))

    def step(scan):
        def run():
            M.grad = None
            (scan(M, dim=2) * weights).sum().backward()

        return run

    scans = {
        "sequential loop": sequential_scan,
        "Hillis-Steele scan": _hillis_steele,
        "associative scan": associative_scan,
    }
    return compare_times(
        {name: step(scan) for name, scan in scans.items()}, repeats=repeats
    )


def _hdd_step_times(quick: bool, repeats: int) -> tuple[str, dict[str, float]]:
    """(shape, times) of a GPT training step fwd+bwd with RoPE and with HDD-RoPE."""
    from ropelib.model import GPT, GPTConfig

    layers, width, block = (2, 32, 32) if quick else (4, 128, 64)
    batch = 4 if quick else 12
    shape = dict(n_layer=layers, n_head=layers, n_embd=width, block_size=block)
    idx = torch.randint(0, 512, (batch, block))
    variants = {
        "rope": ("rope", {}),
        "hdd b=2": ("hdd", {"block_dim": 2}),
        "hdd b=4": ("hdd", {"block_dim": 4}),
        "hdd b=4 cayley (matrix scan)": ("hdd", {"block_dim": 4, "map": "cayley"}),
    }

    def step(model: torch.nn.Module) -> Callable[[], None]:
        def run():
            model.zero_grad(set_to_none=True)
            model(idx, idx)[1].backward()

        return run

    steps = {
        name: step(GPT(GPTConfig(vocab_size=512, pe=pe, pe_options=options, **shape)))
        for name, (pe, options) in variants.items()
    }
    name = f"{layers} layers, width {width}, context {block}, batch {batch}"
    return name, compare_times(steps, repeats=repeats)


# %% notebooks/94_benchmarks.md: Benchmarks / HDD-RoPE: the scan and a training step
@register_benchmark("hdd")
def bench_hdd(
    quick: bool = False, repeats: int | None = None
) -> dict[str, dict[str, float]]:
    """Scans; HDD-RoPE's step vs RoPE. Defined in the appendix *Benchmarks*."""
    repeats = repeats or (2 if quick else 5)
    results: dict[str, dict[str, float]] = {}
    for T in (32, 64) if quick else (256, 1024, 4096):
        results[f"scan T={T}"] = times = _scan_times(T, repeats)
        title = f"prefix products of [2, 4, {T}, 8] 4x4 rotations, fwd+bwd"
        print_ratios(title, times, "associative scan")
    shape, results["train step"] = _hdd_step_times(quick, repeats)
    print_ratios(
        f"training step fwd+bwd, GPT of {shape}", results["train step"], "rope"
    )
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
