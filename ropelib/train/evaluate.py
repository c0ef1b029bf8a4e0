# generated from notebooks/03_training.md by tools/export.py, do not edit

# %% notebooks/03_training.md: Training / The evaluation protocol: the same targets at every
#    length
"""The evaluation protocol: per-position loss on the same targets at every length."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ropelib.data.batches import iter_tail_batches, tail_window_ends


# %% notebooks/03_training.md: Training / The evaluation protocol: the same targets at every
#    length
def _tail_losses(model, tokens, ends, length, block_size, batch_size, device, autocast):
    # per-position mean loss over the windows [length], and each window's tail mean [n]
    position_sum = torch.zeros(length, dtype=torch.float64)
    per_window = []
    for x, y in iter_tail_batches(tokens, ends, length, batch_size, device):
        with autocast():
            logits, _ = model(x)
        losses = F.cross_entropy(
            logits.float().flatten(0, 1), y.flatten(), reduction="none"
        ).view(y.shape)
        position_sum += losses.double().sum(0).cpu()
        per_window.append(losses[:, -block_size:].double().mean(1).cpu())
    return position_sum / len(ends), torch.cat(per_window)


@torch.no_grad()
def evaluate_protocol(
    model: torch.nn.Module,
    tokens: np.ndarray,
    block_size: int,
    lengths: Sequence[int] = (1, 2, 4),
    max_targets: int | None = 250_000,
    batch_size: int = 16,
    device: str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    longest: int | None = None,
) -> dict[str, dict | None]:
    """Loss on the same targets at each multiple of block_size.

    The windows end where a window of `longest` (default: the largest of `lengths`)
    multiples fits, so calls with the same `longest` score the same targets. Defined in
    the chapter *Training*.
    """
    longest = max(lengths) if longest is None else longest
    if longest < max(lengths):
        raise ValueError(
            f"longest must be >= every length, got {longest} < {max(lengths)}"
        )
    ends = tail_window_ends(tokens, block_size, longest, max_targets)
    max_length = getattr(model, "max_length", None)
    was_training = model.training
    model.eval()
    results: dict[str, dict | None] = {}
    for multiple in lengths:
        length = multiple * block_size
        if max_length is not None and length > max_length:
            results[f"{multiple}x"] = None  # no positions there: nothing to measure
            continue
        batch = max(1, batch_size // multiple)
        positions, windows = _tail_losses(
            model, tokens, ends, length, block_size, batch, device, autocast
        )
        results[f"{multiple}x"] = {
            "loss": float(windows.mean()),
            "targets": len(ends) * block_size,
            "context": length,
            "positions": [round(v, 5) for v in positions.tolist()],
            "windows": [round(v, 5) for v in windows.tolist()],
        }
    model.train(was_training)
    return results


__all__ = [
    "evaluate_protocol",
]
