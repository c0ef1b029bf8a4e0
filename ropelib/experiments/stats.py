# generated from notebooks/93_experiments.md by tools/export.py, do not edit

# %% notebooks/93_experiments.md: The experiment runner / Statistics over seeds
"""Statistics over seeds: mean and standard deviation, differences between configurations."""

from __future__ import annotations

import math


def mean_std(values: list[float]) -> tuple[float, float] | None:
    """Mean and sample std, or None if empty. Defined in the chapter *The experiment runner*."""
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def difference(
    summary: dict, a: str, b: str, column: str = "val_loss 1x"
) -> tuple[float, float]:
    """Mean of `a` minus mean of `b` in a `results_table` summary, and its standard error.

    |difference| < 2 standard errors is what the chapters call "within noise".
    Defined in the chapter *The experiment runner*.
    """
    (mean_a, std_a), (mean_b, std_b) = summary[a][column], summary[b][column]
    n_a, n_b = summary[a]["seeds"], summary[b]["seeds"]
    return mean_a - mean_b, math.sqrt(std_a**2 / n_a + std_b**2 / n_b)


__all__ = [
    "difference",
    "mean_std",
]
