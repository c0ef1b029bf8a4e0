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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def steady_allocator() -> bool:
    """Make glibc keep freed memory; False where there is no glibc.

    Defined in the appendix *Benchmarks*.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    # never trim the heap; buffers up to 32 MiB (glibc's largest threshold) from the heap
    kept = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) == 1 and kept


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for the device's queued work. Defined in the appendix *Benchmarks*."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def compare_times(
    candidates: dict[str, Callable[[], object]],
    *,
    repeats: int = 20,
    warmup: int = 3,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Median seconds per call, round-robin. Defined in the appendix *Benchmarks*."""
    steady_allocator()
    for run in candidates.values():
        for _ in range(warmup):
            run()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


# %% notebooks/94_benchmarks.md: Benchmarks / Timing side by side
def print_ratios(title: str, times: dict[str, float], reference: str) -> None:
    """Print medians and ratios to `reference`. Defined in the appendix *Benchmarks*."""
    print(
        textwrap.fill(f"{title}; ratio to {reference}:", 88, subsequent_indent="    ")
    )
    width = max(map(len, times))
    for name, seconds in times.items():
        ratio = seconds / times[reference]
        print(f"  {name:<{width}}  {seconds * 1e3:9.3f} ms  {ratio:6.2f}x")


def peak_memory(run: Callable[[], object], device: str | torch.device) -> int | None:
    """Peak bytes one `run()` allocates on a CUDA device, None elsewhere.

    Defined in the appendix *Benchmarks*.
    """
    if torch.device(device).type != "cuda":
        return None
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure(
    title: str,
    candidates: dict[str, Callable[[], object]],
    reference: str,
    *,
    repeats: int,
    warmup: int = 3,
    device: str | torch.device = "cpu",
) -> dict:
    """Time side by side, print, return the table. Appendix *Benchmarks*."""
    times = compare_times(candidates, repeats=repeats, warmup=warmup, device=device)
    print_ratios(title, times, reference)
    memory = {name: peak_memory(run, device) for name, run in candidates.items()}
    return {
        "title": title,
        "reference": reference,
        "seconds": times,
        "ratio": {name: seconds / times[reference] for name, seconds in times.items()},
        "peak_memory_bytes": None if None in memory.values() else memory,
    }


# %% notebooks/94_benchmarks.md: Benchmarks / Timing side by side
DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def _compiled(fn: Callable, backend: str | None) -> Callable | None:
    """`torch.compile(fn)` with a fixed shape, or None when nothing is compiled."""
    if backend is None:
        return None
    return torch.compile(fn, backend=backend, dynamic=False)


def _autocast(device: str | torch.device, dtype: torch.dtype):
    """A factory of autocast contexts for half-precision training, else no-ops."""
    import contextlib

    if dtype == torch.float32:
        return contextlib.nullcontext
    return lambda: torch.autocast(torch.device(device).type, dtype=dtype)


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE against the copy floor
class _CopyBothWays(torch.autograd.Function):
    """The copy floor: copy forward, copy the gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clone()


def _each(fn: Callable) -> Callable:
    """A rotation of one tensor as a rotation of the pair (q, k)."""
    return lambda q, k: (fn(q), fn(k))


def _forward_backward(fn: Callable, q, k, grads) -> Callable[[], None]:
    def run():
        q.grad = k.grad = None
        torch.autograd.backward(fn(q, k), grads)

    return run


def _agrees(theirs, ours, dtype: torch.dtype) -> None:
    """The same rotation to the precision of the dtype, or an AssertionError."""
    atol = 1e-3 if dtype == torch.float32 else 5e-2
    for a, b in zip(theirs, ours, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=0)


def _rope_tensors(shape, kv_heads, device, dtype):
    B, H, T, D = shape
    make = (  # Liger's layout: a [B, T, H, D] projection seen as [B, H, T, D]
        (lambda h: torch.randn(B, T, h, D, device=device, dtype=dtype).transpose(1, 2))
        if kv_heads
        else (lambda h: torch.randn(B, h, T, D, device=device, dtype=dtype))
    )
    q, k = make(H), make(kv_heads or H)
    grads = (torch.randn_like(q), torch.randn_like(k))
    return q.requires_grad_(), k.requires_grad_(), grads


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE against the copy floor
def _half_split_table(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin `[1, T, D]` as Hugging Face's LLaMA rotary embedding returns them."""
    from ropelib.rope import rope_angles, rope_frequencies

    T, D = q.shape[-2], q.shape[-1]
    angles = rope_angles(torch.arange(T), rope_frequencies(D))
    angles = torch.cat((angles, angles), dim=-1)[None].to(q.device)
    return angles.cos().to(q.dtype), angles.sin().to(q.dtype)


def _reference_ropes(q, k, backend: str | None) -> dict[str, Callable]:
    """The installed references, each checked against ropelib's rotation first."""
    from importlib.metadata import version
    from importlib.util import find_spec

    from ropelib.rope import apply_rope

    found: dict[str, Callable] = {}
    cos, sin = _half_split_table(q)
    with torch.no_grad():
        half_split = _each(lambda t: apply_rope(t, interleaved=False))(q, k)
        interleaved = _each(apply_rope)(q, k)
    if find_spec("transformers"):
        import warnings

        with warnings.catch_warnings():  # tqdm.auto: a kernel without Jupyter widgets
            warnings.filterwarnings("ignore", "IProgress not found")
            from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        def hf(q, k):
            return apply_rotary_pos_emb(q, k, cos, sin)

        _agrees(hf(q.detach(), k.detach()), half_split, q.dtype)
        name = f"HF apply_rotary_pos_emb {version('transformers')}"
        found[name] = hf
        if backend:
            found[f"{name}, compiled"] = _compiled(hf, backend)
    if find_spec("rotary_embedding_torch"):
        from rotary_embedding_torch import RotaryEmbedding as Theirs

        theirs = Theirs(dim=q.shape[-1]).to(q.device)
        fn = _each(theirs.rotate_queries_or_keys)
        _agrees(fn(q.detach(), k.detach()), interleaved, q.dtype)
        found[f"rotary-embedding-torch {version('rotary-embedding-torch')}"] = fn
    if q.is_cuda and find_spec("liger_kernel"):
        try:  # Triton kernels: an install that does not fit this GPU is left out
            from liger_kernel.transformers.rope import liger_rotary_pos_emb
        except Exception as error:  # any failure to load them, not only ImportError
            print(f"liger-kernel does not import here, left out: {error!r}")
            return found

        def liger(q, k):
            return liger_rotary_pos_emb(q, k, cos, sin)

        _agrees(liger(q.detach(), k.detach()), half_split, q.dtype)
        found[f"Liger-Kernel {version('liger-kernel')}"] = liger
    return found


# %% notebooks/94_benchmarks.md: Benchmarks / RoPE against the copy floor
# Liger-Kernel's RoPE benchmark: batch 1, 32 query and 8 key/value heads (bf16 on a GPU)
LIGER_SHAPE, LIGER_KV_HEADS = (1, 32, 2048, 128), 8


@register_benchmark("rope")
def bench_rope(
    quick: bool = False,
    shape: tuple[int, ...] | None = None,
    repeats: int | None = None,
    *,
    kv_heads: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = "inductor",
) -> dict:
    """RoPE fwd+bwd against the copy floor. Defined in the appendix *Benchmarks*."""
    from ropelib.rope import RotaryEmbedding, apply_rope

    cuda = torch.device(device).type == "cuda"
    if shape is None and (quick or cuda):  # Liger-Kernel's layout, fewer kv heads
        shape, kv_heads = (
            ((1, 4, 128, 64), 2) if quick else (LIGER_SHAPE, LIGER_KV_HEADS)
        )
    shape = shape or (8, 8, 1024, 64)
    repeats = repeats or (3 if quick else 20)
    q, k, grads = _rope_tensors(shape, kv_heads, device, _dtype(dtype))
    pairs = {"interleaved": True, "half-split": False}
    candidates = {"copy floor": _each(_CopyBothWays.apply)}
    for pairing, interleaved in pairs.items():
        rotate = _each(lambda t, i=interleaved: apply_rope(t, interleaved=i))
        cached = RotaryEmbedding(shape[-1], interleaved=interleaved)
        candidates[f"apply_rope {pairing}"] = rotate
        candidates[f"RotaryEmbedding {pairing}"] = cached.rotate_queries_and_keys
        if compile_backend:
            compiled = _compiled(cached.rotate_queries_and_keys, compile_backend)
            candidates[f"RotaryEmbedding {pairing}, compiled"] = compiled
    candidates.update(_reference_ropes(q, k, compile_backend))
    runs = {name: _forward_backward(fn, q, k, grads) for name, fn in candidates.items()}
    heads = f"q {list(q.shape)}, k {list(k.shape)}"
    title = (
        f"RoPE fwd+bwd, {heads}, {dtype}, {device}, threads={torch.get_num_threads()}"
    )
    table = measure(title, runs, "copy floor", repeats=repeats, device=device)
    moved = 4 * (q.nbytes + k.nbytes)  # read x, write y; read the gradient, write it
    table["bytes_moved"] = moved
    table["copy_bandwidth_GBps"] = moved / table["seconds"]["copy floor"] / 1e9
    return table


# %% notebooks/94_benchmarks.md: Benchmarks / One training step of every scheme
def _trainer_step(config, model, tokens, steps, device, dtype) -> Callable[[], None]:
    """One step of the book's trainer: its batches, schedule, clipping and optimiser."""
    from ropelib.train.loop import micro_batch, train_step
    from ropelib.train.optim import configure_optimizer, learning_rate

    optimizer = configure_optimizer(model, config)
    autocast = _autocast(device, dtype)

    def run():
        step = next(steps)
        batches = [micro_batch(tokens, config, step, 0, device)]
        lr = learning_rate(config, step)
        train_step(model, optimizer, batches, lr, config.grad_clip, autocast)

    return run


def _plain_step(model: torch.nn.Module, tokens, batch: int, block: int):
    """The plainest loop that trains the same model, as nanoGPT's train.py does."""
    import numpy as np

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    device = next(model.parameters()).device

    def window(start: int) -> torch.Tensor:
        return torch.from_numpy(tokens[start : start + block + 1].astype(np.int64))

    def run():
        starts = torch.randint(len(tokens) - block - 1, (batch,)).tolist()
        windows = torch.stack([window(i) for i in starts]).to(device)
        _, loss = model(windows[:, :-1], windows[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


# %% notebooks/94_benchmarks.md: Benchmarks / One training step of every scheme
def _baby_candidates(schemes, batch: int, tokens, device: str, dtype: torch.dtype):
    """{name: one step} of the trainer per scheme and of the plain loop."""
    import itertools

    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.model import GPT
    from ropelib.train.config import TrainConfig, model_config

    vocab, block = 65, 64  # 65: nanoGPT's shakespeare_char
    baby = dict(n_layer=4, n_head=4, n_embd=128, block_size=block, batch_size=batch)
    baby.update(tokenizer="char", max_iters=5000, warmup_iters=100)
    steps, candidates = itertools.count(), {}
    for name in ["learned", *(s for s in schemes if s != "learned")]:
        try:
            config = TrainConfig(**baby, pe=name)
        except ValueError as error:  # a scheme that needs options or another shape
            message = f"skipping pe={name}: {error}"
            print(textwrap.fill(message, 88, subsequent_indent="  "))
            continue
        torch.manual_seed(0)
        model = GPT(model_config(config, vocab)).to(device)
        run = _trainer_step(config, model, tokens, steps, device, dtype)
        candidates[f"trainer, pe={name}"] = run
    torch.manual_seed(0)
    plain = GPT(model_config(TrainConfig(**baby, pe="learned"), vocab)).to(device)
    candidates["plain loop, pe=learned"] = _plain_step(plain, tokens, batch, block)
    return candidates


@register_benchmark("train")
def bench_train(
    quick: bool = False,
    repeats: int | None = None,
    schemes: list[str] | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = None,
) -> dict:
    """One training step per scheme. Defined in the appendix *Benchmarks*."""
    import numpy as np

    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.model import POSITION_SCHEMES

    del compile_backend  # the training run below compiles; these steps stay eager
    batch = 4 if quick else 12
    tokens = np.random.default_rng(0).integers(0, 65, 100_000).astype(np.uint16)
    schemes = schemes or sorted(POSITION_SCHEMES)
    runs = _baby_candidates(schemes, batch, tokens, device, _dtype(dtype))
    title = f"one training step, baby GPT, {batch} x 64 tokens, {dtype}, {device}"
    table = measure(
        title,
        runs,
        "trainer, pe=learned",
        repeats=repeats or (2 if quick else 10),
        warmup=1 if quick else 2,
        device=device,
    )
    table["tokens_per_s"] = {n: batch * 64 / s for n, s in table["seconds"].items()}
    return table


# %% notebooks/94_benchmarks.md: Benchmarks / CRoPE's projection
def _gauss_complex_linear(
    x: torch.Tensor, real: torch.Tensor, imag: torch.Tensor
) -> torch.Tensor:
    """(A + iB)(x_r + i x_i) with three real GEMMs (Gauss): the alternative measured."""
    x_r, x_i = x[..., 0::2], x[..., 1::2]
    t1, t2 = x_r @ real.T, x_i @ imag.T
    t3 = (x_r + x_i) @ (real + imag).T
    return torch.stack((t1 - t2, t3 - t1 - t2), dim=-1).flatten(-2)


def _projection_runs(width, tokens, device, dtype, backend) -> dict[str, Callable]:
    from ropelib.crope import ComplexLinear

    x = torch.randn(*tokens, width, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(*tokens, 3 * width, device=device, dtype=dtype)
    real = torch.nn.Linear(width, 3 * width).to(device, dtype)
    complex_layer = ComplexLinear(width, 3 * width).to(device, dtype)

    def gauss(t: torch.Tensor) -> torch.Tensor:
        a, b = complex_layer.weight_real, complex_layer.weight_imag
        return _gauss_complex_linear(t, a, b) + complex_layer.bias

    tolerance = 1e-4 if dtype == torch.float32 else 5e-2
    with torch.no_grad():
        torch.testing.assert_close(
            gauss(x), complex_layer(x), atol=tolerance, rtol=tolerance
        )

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
    if backend:
        candidates["ComplexLinear, compiled"] = _compiled(complex_layer, backend)
    return {name: forward_backward(fn) for name, fn in candidates.items()}


@register_benchmark("crope")
def bench_crope(
    quick: bool = False,
    widths: tuple[int, ...] | None = None,
    repeats: int | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = "inductor",
) -> dict[str, dict]:
    """Q/K/V projection, real vs complex. Defined in the appendix *Benchmarks*."""
    widths = widths or ((64, 128) if quick else (128, 512, 768))
    repeats = repeats or (3 if quick else 15)
    tokens = (2, 64) if quick else (8, 256)
    tables = {}
    for width in widths:
        runs = _projection_runs(width, tokens, device, _dtype(dtype), compile_backend)
        title = f"Q/K/V projection fwd+bwd, C={width}, tokens={tokens[0]}x{tokens[1]}"
        title += f", {dtype}, {device}"
        tables[f"C={width}"] = measure(
            title, runs, "nn.Linear(C, 3C)", repeats=repeats, device=device
        )
    return tables


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


def _fold_basis(
    basis: torch.Tensor, weight: torch.Tensor, b: int, interleaved: bool = True
) -> torch.Tensor:
    """The basis change applied to the q and k rows of W_qkv, as the projection does."""
    H = basis.shape[0]
    blocks = weight.view(2, H, -1, b, weight.shape[-1])  # [2, H, D / b, b, C]
    folded = basis.transpose(-1, -2).to(weight.dtype) @ blocks  # V_jᵀ on each block
    if interleaved:
        return folded
    # half-split: pair l of block j to channels j·b/2 + l and D/2 + j·b/2 + l
    return (
        folded.unflatten(3, (b // 2, 2)).permute(0, 1, 4, 2, 3, 5).reshape(weight.shape)
    )


def _dense_rotation(skew_blocks: torch.Tensor, positions: torch.Tensor, q, k):
    """A dense D x D matrix_exp per token and head: the reference approach."""
    H, n_blocks, b, _ = skew_blocks.shape  # [H, D / b, b, b]
    generator = skew_blocks.new_zeros(H, n_blocks * b, n_blocks * b)
    for j in range(n_blocks):
        generator[:, j * b : (j + 1) * b, j * b : (j + 1) * b] = skew_blocks[:, j]
    angles = positions.float()[:, None, None, None] * generator
    R = torch.matrix_exp(angles).to(q.dtype)  # [T, H, D, D]
    rotate = "thde,zhte->zhtd"
    return torch.einsum(rotate, R, q), torch.einsum(rotate, R, k)


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
def _comrope_setup(B, H, T, D, b, device, dtype):
    from ropelib.comrope import ComRoPEAP

    def leaf(*shape):
        return torch.randn(*shape, device=device, dtype=dtype, requires_grad=True)

    q, k = leaf(B, H, T, D), leaf(B, H, T, D)
    weight = leaf(2 * H * D, H * D)  # the q and k rows of W_qkv
    comrope = ComRoPEAP(D, n_heads=H, block_dim=b).to(device)
    with torch.no_grad():
        comrope.basis_generator.normal_(std=0.1)
    return q, k, weight, comrope


def _comrope_variants(q, k, weight, comrope, b: int) -> dict[str, Callable]:
    """ComRoPE-AP's variants, each returning (q', k'[, folded weight])."""
    from ropelib.rope import apply_rotary

    positions = torch.arange(q.shape[-2], device=q.device)

    def folded(interleaved: bool = True):  # what the model runs: the basis in W
        q_rot, k_rot = comrope.rotate_in_basis(  # q, k from the folded W
            q, k, positions, interleaved=interleaved
        )
        return q_rot, k_rot, _fold_basis(comrope.basis(), weight, b, interleaved)

    compute = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype

    def autograd_angles():  # the same folded rotation, differentiated by autograd
        angles = comrope.angles(positions).movedim(-2, -3).to(compute)  # [H, T, D/2]
        cos, sin = angles.cos(), angles.sin()
        rotate = (apply_rotary(x.to(compute), cos, sin).to(x.dtype) for x in (q, k))
        q_rot, k_rot = rotate
        return q_rot, k_rot, _fold_basis(comrope.basis(), weight, b)

    return {
        f"ComRoPE-AP b={b}, folded": folded,
        f"ComRoPE-AP b={b}, folded, half-split": lambda: folded(interleaved=False),
        f"ComRoPE-AP b={b}, folded, autograd cos/sin": autograd_angles,
        f"ComRoPE-AP b={b}, basis per token": lambda: comrope.rotate_queries_and_keys(
            q, k, positions
        ),
        f"ComRoPE-AP b={b}, rotation only": lambda: comrope.rotate_in_basis(
            q, k, positions
        ),
        f"ComRoPE-AP b={b}, rotation only, half-split": lambda: comrope.rotate_in_basis(
            q, k, positions, interleaved=False
        ),
        # the rest of folded: what does not grow with the tokens
        f"ComRoPE-AP b={b}, basis and fold only": lambda: (
            None,
            None,
            _fold_basis(comrope.basis(), weight, b),
        ),
    }


# compiled too: RoPE's rotation and these (the per-token basis is left eager)
_COMPILED_COMROPE = (
    "folded",
    "folded, half-split",
    "folded, autograd cos/sin",
    "rotation only",
    "rotation only, half-split",
)


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
def _comrope_candidates(
    B, H, T, D, b, dense, device="cpu", dtype=torch.float32, backend=None
):
    """({name: fwd+bwd step}, {name: bytes saved}) of RoPE and the ComRoPE variants."""
    import warnings

    from ropelib.rope import RotaryEmbedding

    q, k, weight, comrope = _comrope_setup(B, H, T, D, b, device, dtype)
    grad, weight_grad = torch.randn_like(q), torch.randn_like(weight)
    rope = RotaryEmbedding(D)
    candidates = {
        "copy floor": lambda: (_CopyBothWays.apply(q), _CopyBothWays.apply(k)),
        "RoPE": lambda: rope.rotate_queries_and_keys(q, k),
    }
    if dense:
        candidates["dense matrix_exp per token"] = lambda: _dense_rotation(
            comrope.skew_blocks(), torch.arange(T, device=device), q, k
        )
    else:
        if backend:
            compiled_rope = _compiled(rope.rotate_queries_and_keys, backend)
            candidates["RoPE, compiled"] = lambda: compiled_rope(q, k)
        for name, variant in _comrope_variants(q, k, weight, comrope, b).items():
            candidates[name] = variant
            if backend and name.split(", ", 1)[1] in _COMPILED_COMROPE:
                candidates[f"{name}, compiled"] = _compiled(variant, backend)

    def backward_of(fn):
        def step():
            q.grad = k.grad = weight.grad = None
            comrope.zero_grad(set_to_none=True)
            outputs = fn()
            # all that trains: q, k, ComRoPE's frequencies (and basis, when folded)
            tensors = [t for t in outputs[:2] if t is not None]
            grads = [grad] * len(tensors)
            if len(outputs) > 2:  # the folded weight's gradient flows into the basis
                tensors.append(outputs[2])
                grads.append(weight_grad.view_as(outputs[2]))
            torch.autograd.backward(tensors, grads)

        return step

    # the first calls compile; Inductor leaves the complex products to ATen's kernels
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Torchinductor does not support code generation"
        )
        memory = {name: saved_tensor_bytes(fn) for name, fn in candidates.items()}
    return {name: backward_of(fn) for name, fn in candidates.items()}, memory


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
COMROPE_SHAPE = (4, 8, 1024, 64, 8)  # B, H, T, D and the block size b


def comrope_arithmetic(B: int, H: int, T: int, D: int, b: int) -> dict[str, int]:
    """Multiply-adds of the fold and the projection, entries RoPE turns (q and k), and the
    entries each step must read or write at least (`*_traffic`, forward and backward)."""
    C = H * D
    return {
        "fold": 2 * C * C * b,
        "rope": 2 * B * T * C,
        "projection": 3 * B * T * C * C,
        # q and k: in and out forward, their gradients in and out backward
        "rope_traffic": 8 * B * T * C,
        # the same, and the rotated q and k read again for the angles' gradient
        "rotation_traffic": 10 * B * T * C,
        # the 2C x C weights: read and written forward; backward, their gradient read, the
        # weights read again (for the basis's gradient) and their own gradient written
        "fold_traffic": 10 * C * C,
    }


def _print_arithmetic(sizes: dict[str, int]) -> None:
    """`comrope_arithmetic`'s figures, and the memory floor they give."""
    print(f"multiply-adds of the fold: {sizes['fold']:,}; entries RoPE turns: "
          f"{sizes['rope']:,}; multiply-adds of the projection: "
          f"{sizes['projection']:,}")  # fmt: skip
    floor = (sizes["rotation_traffic"] + sizes["fold_traffic"]) / sizes["rope_traffic"]
    print(f"entries moved, fwd+bwd: RoPE {sizes['rope_traffic']:,}, the folded rotation "
          f"{sizes['rotation_traffic']:,} and the fold {sizes['fold_traffic']:,}: at the "
          f"memory floor, folded ComRoPE is {floor:.2f}x RoPE")  # fmt: skip


def _projection_for_scale(B, H, T, D, device, dtype):
    """(fwd+bwd step, bytes saved) of the Q/K/V projection that makes q and k."""
    C = H * D
    x = torch.randn(B, T, C, device=device, dtype=dtype, requires_grad=True)
    weight = torch.randn(3 * C, C, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(B, T, 3 * C, device=device, dtype=dtype)

    def step():
        x.grad = weight.grad = None
        torch.nn.functional.linear(x, weight).backward(grad)

    return step, saved_tensor_bytes(lambda: torch.nn.functional.linear(x, weight))


# %% notebooks/94_benchmarks.md: Benchmarks / ComRoPE: speed and memory
@register_benchmark("comrope")
def bench_comrope(
    quick: bool = False,
    repeats: int | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = "inductor",
) -> dict:
    """ComRoPE against RoPE, time and memory. Defined in the appendix *Benchmarks*."""
    B, H, T, D, b = (2, 4, 64, 32, 8) if quick else COMROPE_SHAPE
    repeats = repeats or (3 if quick else 10)
    kind = _dtype(dtype)
    runs, memory = _comrope_candidates(
        B, H, T, D, b, False, device, kind, compile_backend
    )
    scale = "Q/K/V projection, for scale"  # the GEMM the basis is folded into
    runs[scale], memory[scale] = _projection_for_scale(B, H, T, D, device, kind)
    title = f"rotation + application fwd+bwd, q and k [{B}, {H}, {T}, {D}], {dtype}"
    table = measure(title, runs, "RoPE", repeats=repeats, device=device)
    if compile_backend:  # compiled against compiled, from the same rounds
        seconds, reference = table["seconds"], "RoPE, compiled"
        compiled = [name for name in seconds if name.endswith(", compiled")]
        table["compiled_ratio"] = {
            name: seconds[name] / seconds[reference] for name in compiled
        }
        table["compiled_reference"] = reference
        print(f"the compiled candidates; ratio to {reference}:")
        width = max(map(len, compiled))
        for name in compiled:
            print(f"  {name:<{width}}  {table['compiled_ratio'][name]:6.2f}x")
    small_T = min(T, 128)
    small_runs, small_memory = _comrope_candidates(
        B, H, small_T, D, b, True, device, kind
    )
    small = measure(
        f"the same at T={small_T}",
        small_runs,
        "RoPE",
        repeats=max(2, repeats // 3),
        warmup=1,  # the dense variant takes seconds a call
        device=device,
    )
    print(f"memory saved for backward (MB), at T={T} unless named:")
    dense = "dense matrix_exp per token"
    rows = {**memory, f"{dense} (T={small_T})": small_memory[dense]}
    width = max(map(len, rows))
    for name, size in rows.items():
        print(f"  {name:<{width}}  {size / 2**20:8.1f}")
    table["saved_for_backward_bytes"] = rows
    table["arithmetic"] = sizes = comrope_arithmetic(B, H, T, D, b)
    _print_arithmetic(sizes)
    table["dense"] = small
    return table


# %% notebooks/94_benchmarks.md: Benchmarks / HDD-RoPE: the scan and a training step
def _hillis_steele(matrices: torch.Tensor, dim: int) -> torch.Tensor:
    """Prefix products in ceil(log2 T) rounds of T products: the alternative timed."""
    x, offset = matrices.movedim(dim, 0), 1
    while offset < x.shape[0]:  # entry t >= offset: (product to t - offset) @ (to t)
        x = torch.cat((x[:offset], x[:-offset] @ x[offset:]), dim=0)
        offset *= 2
    return x.movedim(0, dim)


def _scan_runs(T: int, device: str) -> dict[str, Callable[[], None]]:
    """Prefix products of [2, 4, T, 8] 4x4 rotations, fwd+bwd, by three scans."""
    from ropelib.scan import associative_scan, sequential_scan

    A = torch.randn(2, 4, T, 8, 4, 4, device=device)
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
    if T > 1024:  # T dependent steps: tens of seconds a call on a CPU at T = 4096
        del scans["sequential loop"]
    return {name: step(scan) for name, scan in scans.items()}


def _hdd_step_runs(quick: bool, device: str, dtype: torch.dtype):
    """(shape, runs) of a GPT training step fwd+bwd with RoPE and with HDD-RoPE."""
    from ropelib.model import GPT, GPTConfig

    layers, width, block = (2, 32, 32) if quick else (4, 128, 64)
    batch = 4 if quick else 12
    shape = dict(n_layer=layers, n_head=layers, n_embd=width, block_size=block)
    idx = torch.randint(0, 512, (batch, block), device=device)
    autocast = _autocast(device, dtype)
    variants = {
        "rope": ("rope", {}),
        "hdd b=2": ("hdd", {"block_dim": 2}),
        "hdd b=4": ("hdd", {"block_dim": 4}),
        "hdd b=4 cayley (matrix scan)": ("hdd", {"block_dim": 4, "map": "cayley"}),
    }

    def step(model: torch.nn.Module) -> Callable[[], None]:
        def run():
            model.zero_grad(set_to_none=True)
            with autocast():
                loss = model(idx, idx)[1]
            loss.backward()

        return run

    def model(pe: str, options: dict) -> torch.nn.Module:
        config = GPTConfig(vocab_size=512, pe=pe, pe_options=options, **shape)
        return GPT(config).to(device)

    steps = {name: step(model(*variant)) for name, variant in variants.items()}
    name = f"{layers} layers, width {width}, context {block}, batch {batch}"
    return name, steps


# %% notebooks/94_benchmarks.md: Benchmarks / HDD-RoPE: the scan and a training step
@register_benchmark("hdd")
def bench_hdd(
    quick: bool = False,
    repeats: int | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = None,
) -> dict[str, dict]:
    """Scans; HDD-RoPE's step vs RoPE. Defined in the appendix *Benchmarks*."""
    del (
        compile_backend
    )  # the scans and the step are timed eagerly: nothing here is compiled
    repeats = repeats or (2 if quick else 5)
    tables: dict[str, dict] = {}
    for T in (32, 64) if quick else (256, 1024, 4096):
        title = f"prefix products of [2, 4, {T}, 8] 4x4 rotations, fwd+bwd, fp32"
        tables[f"scan T={T}"] = measure(
            title,
            _scan_runs(T, device),
            "associative scan",
            repeats=repeats,
            warmup=1,
            device=device,
        )
    shape, runs = _hdd_step_runs(quick, device, _dtype(dtype))
    title = f"training step fwd+bwd, GPT of {shape}, {dtype}, {device}"
    tables["train step"] = measure(title, runs, "rope", repeats=repeats, device=device)
    return tables


# %% notebooks/94_benchmarks.md: Benchmarks / A short training run
def _corpus(path: str | None):
    """(tokens, vocabulary size): a uint16 token file, or the notebooks' bytes."""
    from pathlib import Path

    import numpy as np

    if path is not None:
        tokens = np.fromfile(path, dtype=np.uint16)
        return tokens, int(tokens.max()) + 1
    import ropelib

    root = Path(ropelib.__file__).resolve().parent.parent / "notebooks"
    text = b"".join(p.read_bytes() for p in sorted(root.glob("*.md")))
    if not text:  # an installed package, without the book beside it
        raise ValueError(f"no notebooks in {root} to train on; pass a tokens file")
    return np.frombuffer(text, dtype=np.uint8).astype(np.uint16), 256


def _train_for(model, tokens, shape: dict, seconds: float, device, dtype) -> dict:
    """Train `model` with AdamW for `seconds` (at least 3 steps); its speed and loss."""
    batch, block = shape["batch"], shape["block_size"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast, losses = _autocast(device, dtype), []
    generator = torch.Generator().manual_seed(0)
    data = torch.from_numpy(tokens.astype("int64"))
    start = time.perf_counter()
    while len(losses) < 3 or time.perf_counter() - start < seconds:
        if len(losses) == 1:  # the first step compiles: time from the second on
            synchronize(device)
            start = time.perf_counter()
        rows = torch.randint(len(data) - block - 1, (batch,), generator=generator)
        windows = torch.stack([data[i : i + block + 1] for i in rows]).to(device)
        with autocast():
            _, loss = model(windows[:, :-1], windows[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    synchronize(device)
    elapsed = time.perf_counter() - start
    timed = len(losses) - 1
    last = torch.stack(losses[-10:]).float().mean().item()
    return {
        "steps": len(losses),
        "tokens_per_s": timed * batch * block / elapsed,
        "final_loss": last,
        "first_loss": losses[0].float().item(),
    }


# %% notebooks/94_benchmarks.md: Benchmarks / A short training run
CROPE_PAPER_SHAPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=1024, batch=16)


def training_run(
    quick: bool = False,
    *,
    schemes: tuple[str, ...] = ("rope", "crope"),
    seconds: float = 20.0,
    tokens_file: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    compile_backend: str | None = "inductor",
) -> dict:
    """Tokens/s and loss of short runs. Defined in the appendix *Benchmarks*."""
    import ropelib.schemes  # noqa: F401  (registers every position scheme of the book)
    from ropelib.model import GPT, GPTConfig

    shape = dict(CROPE_PAPER_SHAPE)
    if quick:
        shape.update(n_layer=1, n_head=2, n_embd=32, block_size=32, batch=2)
        seconds = 0.0
    tokens, vocab = _corpus(tokens_file)
    runs = {}
    for pe in schemes:
        for backend in (None, compile_backend) if compile_backend else (None,):
            torch.manual_seed(0)
            layers = {k: v for k, v in shape.items() if k != "batch"}
            model = GPT(GPTConfig(vocab_size=vocab, pe=pe, **layers)).to(device)
            step_model = (
                model if backend is None else torch.compile(model, backend=backend)
            )
            name = f"pe={pe}" + ("" if backend is None else f", compiled ({backend})")
            runs[name] = _train_for(
                step_model, tokens, shape, seconds, device, _dtype(dtype)
            )
            result = runs[name]
            print(
                f"  {name:<32} {result['tokens_per_s']:10,.0f} tokens/s, "
                f"loss {result['first_loss']:.3f} -> {result['final_loss']:.3f}"
            )
    return {
        "shape": shape,
        "seconds": seconds,
        "dtype": dtype,
        "runs": runs,
        "corpus": tokens_file or "the notebooks' bytes",
    }


# %% notebooks/94_benchmarks.md: Benchmarks / One report
def environment(device: str = "cpu") -> dict:
    """Device, torch version, date, threads, commit. Appendix *Benchmarks*."""
    import datetime
    import platform

    from ropelib.experiments.records import git_commit

    kind = torch.device(device).type
    name = (
        torch.cuda.get_device_name(device) if kind == "cuda" else platform.processor()
    )
    return {
        "device": device,
        "device_name": name or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "steady_allocator": steady_allocator(),
        "git": git_commit(),  # the commit measured, and whether ropelib/ differed
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def new_report(path: str | None, prefix: str, report: dict) -> str:
    """Create a new report file (its directory too); its path. Appendix *Benchmarks*.

    `path`, or `runs/bench/<prefix>-<UTC time>.json`. An existing file is refused, never
    overwritten, and the file is created exclusively, so two runs never share a report.
    """
    import datetime

    from ropelib.files import atomic_write_json, new_file_path

    if path is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = f"runs/bench/{prefix}-{stamp}.json"
    path = str(new_file_path(path))
    try:
        atomic_write_json(path, report, overwrite=False)
    except FileExistsError:  # a concurrent run created it first
        raise FileExistsError(f"{path} was created by another run meanwhile") from None
    except OSError as error:
        raise NotADirectoryError(f"cannot write {path}: {error}") from None
    return path


# %% notebooks/94_benchmarks.md: Benchmarks / One report
def run_benchmarks(
    names: list[str] | None = None,
    *,
    quick: bool = False,
    json_path: str | None = None,
    device: str = "cpu",
    dtypes: tuple[str, ...] = ("float32",),
    compile_backend: str | None = "inductor",
) -> str:
    """Run benchmarks, write one JSON report; its path. Appendix *Benchmarks*."""
    import traceback

    from ropelib.files import atomic_write_json

    names = names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(
            f"unknown benchmark {unknown[0]!r}; choose from {sorted(BENCHMARKS)}"
        )
    for dtype in dtypes:
        _dtype(dtype)
    report = {**environment(device), "quick": quick, "compile_backend": compile_backend}
    report["benchmarks"], failed, start = {}, [], time.perf_counter()
    json_path = new_report(json_path, "bench", report)  # before anything runs
    for name in names:
        for dtype in dtypes:
            options = dict(device=device, dtype=dtype, compile_backend=compile_backend)
            try:
                result = BENCHMARKS[name](quick, **options)
            except Exception as error:  # recorded; the others still run
                traceback.print_exc()
                result, failed = {"error": repr(error)}, [*failed, f"{name} {dtype}"]
            report["benchmarks"][f"{name} {dtype}"] = result
            report["wall_time_s"] = round(time.perf_counter() - start, 1)
            atomic_write_json(json_path, report)
    print(f"report: {json_path}")
    if failed:  # after the report: what did run is kept
        raise RuntimeError(f"benchmarks failed: {', '.join(failed)} (see {json_path})")
    return json_path


# %% notebooks/94_benchmarks.md: Benchmarks / One report
def build_parser():
    """The options of `bench`. Defined in the appendix *Benchmarks*."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ropelib bench")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--json", default=None, help="the report's path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPES))
    parser.add_argument("--compile-backend", default="inductor", help="or 'none'")
    parser.add_argument("--training-run", action="store_true", help="training_run only")
    parser.add_argument("--seconds", type=float, default=20.0, help="per training run")
    parser.add_argument("--tokens-file", default=None, help="uint16 tokens to train on")
    return parser


def main(argv: list[str] | None = None) -> str:
    """`bench [NAMES] [--quick] [--json FILE] ...`; the report's path.

    Defined in the appendix *Benchmarks*.
    """
    from ropelib.files import atomic_write_json

    args = build_parser().parse_args(argv)
    backend = None if args.compile_backend == "none" else args.compile_backend
    if not args.training_run:
        return run_benchmarks(
            args.names,
            quick=args.quick,
            json_path=args.json,
            device=args.device,
            dtypes=tuple(args.dtype),
            compile_backend=backend,
        )
    report = {**environment(args.device), "quick": args.quick, "runs": {}}
    path = new_report(args.json, "training-run", report)
    for dtype, pe in ((d, pe) for d in args.dtype for pe in ("rope", "crope")):
        run = training_run(  # one scheme at a time, so that a time limit keeps the rest
            args.quick,
            schemes=(pe,),
            seconds=args.seconds,
            tokens_file=args.tokens_file,
            device=args.device,
            dtype=dtype,
            compile_backend=backend,
        )
        if dtype in report["runs"]:
            run["runs"] = {**report["runs"][dtype]["runs"], **run["runs"]}
        report["runs"][dtype] = run
        atomic_write_json(path, report)
    print(f"report: {path}")
    return path


# %% notebooks/94_benchmarks.md: Benchmarks / The GPU check
def junit_summary(xml_path: str) -> dict:
    """Outcomes in a pytest JUnit XML. Defined in the appendix *Benchmarks*."""
    import xml.etree.ElementTree as ET

    tests = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = "failed" if kind == "failure" else kind
                message = (found.get("message") or "")[:300]
        name = f"{case.get('classname')}.{case.get('name')}"
        tests.append(
            {
                "name": name,
                "outcome": outcome,
                "message": message,
                "seconds": float(case.get("time") or 0.0),
            }
        )
    outcomes = ("passed", "failed", "error", "skipped")
    counts = {o: sum(t["outcome"] == o for t in tests) for o in outcomes}
    return {"counts": counts, "tests": tests}


__all__ = [
    "bench_comrope",
    "bench_crope",
    "bench_hdd",
    "bench_rope",
    "bench_train",
    "BENCHMARKS",
    "build_parser",
    "compare_times",
    "comrope_arithmetic",
    "COMROPE_SHAPE",
    "CROPE_PAPER_SHAPE",
    "DTYPES",
    "environment",
    "junit_summary",
    "main",
    "measure",
    "new_report",
    "peak_memory",
    "print_ratios",
    "register_benchmark",
    "run_benchmarks",
    "saved_tensor_bytes",
    "steady_allocator",
    "synchronize",
    "training_run",
]
