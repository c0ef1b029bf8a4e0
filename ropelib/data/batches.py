# generated from notebooks/91_data.md by tools/export.py, do not edit

# %% notebooks/91_data.md: The data pipeline / Batches
"""Batches: random training windows and the fixed windows of an evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ropelib.data.corpora import _check_positive_int


def _check_tokens(tokens: np.ndarray, block_size: int, windows: str) -> None:
    if not isinstance(tokens, np.ndarray) or tokens.ndim != 1:
        raise ValueError(
            f"tokens must be a 1-d numpy array of token ids, got {type(tokens)}"
        )
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must hold integers, got dtype {tokens.dtype}")
    if len(tokens) < block_size + 1:
        raise ValueError(
            f"block_size={block_size} needs {windows} of block_size + 1 = {block_size + 1} "
            f"tokens, but the split has only {len(tokens)}"
        )


def _windows(
    tokens: np.ndarray, starts: np.ndarray, block_size: int, device: torch.device
):
    # [B] starts -> x, y [B, T] int64, y shifted one token right of x
    offsets = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(block_size + 1)
    window = torch.from_numpy(
        np.asarray(tokens[offsets], dtype=np.int64).view(np.ndarray)
    )
    x, y = window[:, :-1].contiguous(), window[:, 1:].contiguous()
    if device.type == "cuda":  # pinned host memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
            device, non_blocking=True
        )
    return x.to(device), y.to(device)


def get_batch(
    tokens: np.ndarray,
    batch_size: int,
    block_size: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows of `tokens`: inputs x and targets y = x shifted by one, [B, T].

    Start positions are drawn with `generator`, so equal generator states give equal batches.
    Defined in the chapter *The data pipeline*.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    block_size = _check_positive_int("block_size", block_size)
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )
    _check_tokens(tokens, block_size, "a window")
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    return _windows(tokens, starts.numpy(), block_size, torch.device(device))


# %% notebooks/91_data.md: The data pipeline / Evaluation windows
def iter_eval_batches(
    tokens: np.ndarray,
    batch_size: int,
    block_size: int,
    max_batches: int,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed, evenly spaced, non-overlapping windows of `tokens` as (x, y) batches [B, T].

    At most `max_batches` batches; every call yields the same windows. Defined in the chapter
    *The data pipeline*.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    block_size = _check_positive_int("block_size", block_size)
    max_batches = _check_positive_int("max_batches", max_batches)
    _check_tokens(tokens, block_size, "one window")
    count = min(max_batches * batch_size, (len(tokens) - 1) // block_size)
    starts = (
        np.linspace(0, len(tokens) - block_size - 1, num=count).round().astype(np.int64)
    )
    device = torch.device(device)
    # checked above, batches made lazily below
    return (
        _windows(tokens, starts[first : first + batch_size], block_size, device)
        for first in range(0, count, batch_size)
    )


# %% notebooks/91_data.md: The data pipeline / Windows that end at the same places
def tail_window_ends(
    tokens: np.ndarray, block_size: int, longest: int, max_targets: int | None = None
) -> np.ndarray:
    """One past the last target of each scored block of `block_size` targets.

    Every block has `longest * block_size` tokens of context inside the split; at most
    `max_targets` targets, evenly spaced blocks.
    Defined in the chapter *The data pipeline*.
    """
    block_size = _check_positive_int("block_size", block_size)
    longest = _check_positive_int("longest", longest)
    _check_tokens(tokens, 1, "one window")
    if len(tokens) < longest * block_size + 1:
        raise ValueError(
            f"block_size={block_size} at {longest}x needs a split of at least "
            f"{longest * block_size + 1} tokens, but the split has only {len(tokens)}"
        )
    count = (len(tokens) - 1) // block_size - longest + 1
    if max_targets is not None:
        max_targets = _check_positive_int("max_targets", max_targets)
        wanted = min(count, -(-max_targets // block_size))
        blocks = np.linspace(0, count - 1, num=wanted).round().astype(np.int64)
    else:
        blocks = np.arange(count, dtype=np.int64)
    return (blocks + longest) * block_size + 1


def iter_tail_batches(
    tokens: np.ndarray,
    ends: np.ndarray,
    length: int,
    batch_size: int,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches [B, length] of the windows whose targets end at `ends`.

    Defined in the chapter *The data pipeline*.
    """
    length = _check_positive_int("length", length)
    batch_size = _check_positive_int("batch_size", batch_size)
    starts = np.asarray(ends, dtype=np.int64) - 1 - length
    if len(starts) and (starts.min() < 0 or starts.max() + length + 1 > len(tokens)):
        raise ValueError(f"length={length}: a window ending at `ends` leaves the split")
    device = torch.device(device)
    return (
        _windows(tokens, starts[first : first + batch_size], length, device)
        for first in range(0, len(starts), batch_size)
    )


__all__ = [
    "get_batch",
    "iter_eval_batches",
    "iter_tail_batches",
    "tail_window_ends",
]
